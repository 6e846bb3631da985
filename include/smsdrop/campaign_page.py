"""The figures of the campaign pages (Airflow UI plugin) and of their JSON API.

Every number comes from the warehouse's views (``sms_campaign_stats``,
``sms_campaign_stats_by_operator``, ``sms_campaign_stats_by_country``) or from the tables
they are built on, grouped the same way, so the pages show what an analyst's SQL shows.
Nothing here returns personal data: no phone number, no message body, no campaign
parameters (they hold the message template); only counts, rates, states and timestamps.

No Airflow import: the Airflow glue (:mod:`smsdrop.airflow.campaign_app`) opens the
warehouse of the ``smsdrop_warehouse`` connection and hands it to these functions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from smsdrop.dropbox import FINAL, FileState

if TYPE_CHECKING:
    from smsdrop.warehouse import Warehouse

#: A SEND file's states in order (:mod:`smsdrop.dropbox`); ``done`` and ``reject`` are
#: both final.
FILE_STATES = tuple(state.value for state in FileState if state not in FINAL)
FINAL_STATES = tuple(state.value for state in FileState if state in FINAL)

#: The funnel's steps: (label, where the number comes from).
FUNNEL = (
    ("audience", "recipients"),  # sms_campaigns: rows read from the audience
    ("valid", "valid"),  # sms_campaigns: rows kept by prepare
    ("uploaded", "submitted"),  # sms_campaign_stats: rows of files that reached the provider
    ("sent", "sent"),  # sms_campaign_stats: billed ACK lines
    ("delivered", "delivered"),  # sms_campaign_stats
)

#: The campaigns table's columns (the list API's fields, in the page's order).
LIST_COLUMNS = (
    "campaign_id",
    "status",
    "send_at",
    "recipients",
    "submitted",
    "sent",
    "delivered",
    "failed",
    "pending",
    "stop_replies",
    "stop_rate",
    "segments",
)

_LIST_SQL = """
SELECT
    s.*,
    c.service_id, c.status, c.send_at, c.recipients, c.valid, c.rejected, c.opted_out,
    c.files, c.created_at, c.updated_at, c.parameters
FROM sms_campaign_stats AS s
LEFT JOIN sms_campaigns AS c ON c.campaign_id = s.campaign_id
{where}
ORDER BY c.created_at DESC NULLS LAST, s.campaign_id DESC
"""

_REJECTS_SQL = """
SELECT reason, COUNT(*) AS rows
FROM sms_rejected_rows WHERE campaign_id = %s
GROUP BY reason ORDER BY rows DESC, reason
"""

_BREAKDOWN_SQL = """
SELECT * FROM {view} WHERE campaign_id = %s
ORDER BY sent DESC, acked DESC, {key} NULLS LAST
"""

# The first STOP of each person: summed over the hours, the view's stop_replies.
_STOPS_SQL = """
SELECT MIN(received_at) AS first_stop
FROM sms_replies WHERE is_stop AND campaign_id = %s
GROUP BY msisdn
"""

_FILES_SQL = """
SELECT
    f.name, f.state, f.row_count, f.byte_count, f.created_at, f.updated_at, f.finished_at,
    COALESCE(a.acked, 0) AS acked, a.ack_loaded_at
FROM sms_campaign_files AS f
LEFT JOIN (
    SELECT send_file, COUNT(*) AS acked, MIN(loaded_at) AS ack_loaded_at
    FROM sms_deliveries
    WHERE send_file IN (SELECT name FROM sms_campaign_files WHERE campaign_id = %s)
    GROUP BY send_file
) AS a ON a.send_file = f.name
WHERE f.campaign_id = %s
ORDER BY f.name
"""


class CampaignNotFound(LookupError):
    """No campaign of that id in the warehouse."""


def _plain(value: Any) -> Any:
    """A database value as JSON: timestamps in UTC ISO 8601, exact numbers as int/float."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return value.item()
    return value


def _rows(wh: Warehouse, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    # The warehouse's own row reader: native Python values on both engines (a pandas frame
    # would turn integer columns holding NULL into floats).
    names, rows = wh._query(sql, params)
    return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in rows]


def _run_id(parameters: Any) -> str | None:
    """The DAG run that planned the campaign (``planned_by``); the rest of the parameters
    (the message template among them) never leaves this function."""
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters)
        except ValueError:
            return None
    if isinstance(parameters, dict):
        run = parameters.get("planned_by")
        return str(run) if run else None
    return None


def _campaign(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["run_id"] = _run_id(row.pop("parameters", None))
    return row


def campaigns(wh: Warehouse) -> list[dict[str, Any]]:
    """Every campaign the warehouse knows, newest first: its ``sms_campaign_stats`` row,
    what ``sms_campaigns`` records of it (status, send slot, counts, times) and the run id."""
    return [_campaign(r) for r in _rows(wh, _LIST_SQL.format(where=""))]


def stop_timeline(first_stops: Sequence[Any]) -> list[dict[str, Any]]:
    """People's first STOP replies per hour (UTC), with the running total."""
    hours: dict[str, int] = {}
    for value in first_stops:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment is None:
            continue
        hour = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
        hours[hour] = hours.get(hour, 0) + 1
    total, timeline = 0, []
    for hour in sorted(hours):
        total += hours[hour]
        timeline.append({"hour": hour, "stop_replies": hours[hour], "cumulative": total})
    return timeline


def file_life(row: dict[str, Any]) -> dict[str, Any]:
    """A SEND file's row with the states it went through (states only move forward, so a
    file in ``lock`` went through ``planned``, ``tmp`` and ``csv``)."""
    state = row["state"]
    order = (*FILE_STATES, state if state in FINAL_STATES else FileState.DONE.value)
    reached = order[: order.index(state) + 1] if state in order else (state,)
    return {**row, "states": list(reached), "final": state in FINAL_STATES}


def campaign_of_run(wh: Warehouse, run_id: str) -> str | None:
    """The campaign a DAG run planned (``planned_by`` of its parameters), if any."""
    found = _rows(
        wh,
        "SELECT campaign_id FROM sms_campaigns WHERE parameters ->> 'planned_by' = %s"
        " ORDER BY created_at DESC LIMIT 1",
        (run_id,),
    )
    return found[0]["campaign_id"] if found else None


def campaign_detail(wh: Warehouse, campaign_id: str) -> dict[str, Any]:
    """One campaign's page: its figures, funnel, rejects by reason, delivery by mobile
    network and by country, STOP replies over time and each SEND file's life.

    :raises CampaignNotFound: the warehouse knows no such campaign.
    """
    found = _rows(wh, _LIST_SQL.format(where="WHERE s.campaign_id = %s"), (campaign_id,))
    if not found:
        raise CampaignNotFound(f"no campaign {campaign_id!r} in the warehouse")
    campaign = _campaign(found[0])
    params = (campaign_id,)
    stops = [r["first_stop"] for r in _rows(wh, _STOPS_SQL, params)]
    return {
        "campaign": campaign,
        "funnel": [{"step": step, "count": campaign.get(key)} for step, key in FUNNEL],
        "rejects": _rows(wh, _REJECTS_SQL, params),
        "by_network": _rows(
            wh, _BREAKDOWN_SQL.format(view="sms_campaign_stats_by_operator", key="network"), params
        ),
        "by_country": _rows(
            wh, _BREAKDOWN_SQL.format(view="sms_campaign_stats_by_country", key="country"), params
        ),
        "stop_replies_over_time": stop_timeline(stops),
        "files": [file_life(r) for r in _rows(wh, _FILES_SQL, params * 2)],
    }
