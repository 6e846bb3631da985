"""What the ``sms_campaign`` DAG's Python tasks do (the DAG file only wires them).

Each function is one task: it takes small values (the request, paths, names) and returns
small values for XCom — never rows. The domain work is in :mod:`smsdrop.campaign`,
:mod:`smsdrop.prepare` and :mod:`smsdrop.upload_contract`; this module adds the connections,
the staging area, the logs and Airflow's ways of ending a task.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from smsdrop.airflow import staging
from smsdrop.airflow.warehouse import (
    WAREHOUSE_CONN_ID,
    warehouse_dialect,
    warehouse_from_connection,
)
from smsdrop.dropbox import MAX_RECORDS as PROVIDER_MAX_RECORDS
from smsdrop.dropbox import FileState, RemoteState
from smsdrop.errors import InputError
from smsdrop.settings import number_setting

if TYPE_CHECKING:
    from smsdrop.account import Account
    from smsdrop.alerts import Alert, Thresholds
    from smsdrop.pricing import PriceList
    from smsdrop.spec import CampaignSpec

log = logging.getLogger(__name__)

MTARGET_CONN_ID = "mtarget_default"
#: Rows per batch through extraction and preparation (memory follows it).
BATCH_ROWS = int(number_setting("SMSDROP_BATCH_ROWS", 250_000, minimum=1, whole=True))
#: Records per SEND file: the spec's 1,000,000 unless an account (or a test) wants fewer.
MAX_RECORDS = int(
    number_setting(
        "SMSDROP_MAX_RECORDS",
        PROVIDER_MAX_RECORDS,
        minimum=1,
        maximum=PROVIDER_MAX_RECORDS,
        whole=True,
    )
)
#: The deployment's price list (YAML); unset: the example shipped (pricing.DEFAULT_PRICES).
PRICES_ENV = "SMSDROP_PRICES"


def _checked(params: dict[str, Any]) -> CampaignSpec:
    """The run's parameters as a campaign spec, every field checked; a refusal fails the
    run naming the field."""
    from smsdrop.spec import CampaignSpec

    try:
        return CampaignSpec.from_mapping(params)
    except InputError as error:
        raise AirflowFailException(f"campaign parameters: {error}") from None


def _spec(request: dict[str, Any]) -> CampaignSpec:
    """The spec :func:`start` checked and handed on (XCom), rebuilt without a second check."""
    from smsdrop.spec import CampaignSpec

    return CampaignSpec.from_dict(request)


def account(conn_id: str = MTARGET_CONN_ID) -> Account:
    """The provider account's options, from the provider connection's extras (the hook's
    connection: one place describes the account); a bad extra fails the run naming it."""
    from airflow.sdk import BaseHook

    from smsdrop.account import Account

    extras = BaseHook.get_connection(conn_id).extra_dejson
    try:
        return Account.from_extras(extras, conn_id)
    except InputError as error:
        raise AirflowFailException(str(error)) from None


def prices() -> PriceList:
    """The price list of the estimate: ``SMSDROP_PRICES`` (a path), else the example."""
    from pathlib import Path

    from smsdrop.pricing import DEFAULT_PRICES, PriceList

    try:
        return PriceList.load(Path(os.environ.get(PRICES_ENV) or DEFAULT_PRICES))
    except InputError as error:
        raise AirflowFailException(f"price list ({PRICES_ENV}): {error}") from None


def thresholds(req: CampaignSpec) -> Thresholds:
    """The campaign's ACK thresholds (percentages in the form, fractions in the checks)."""
    from smsdrop.alerts import Thresholds

    def fraction(text: str) -> float | None:
        return None if text == "off" else float(text) / 100

    return Thresholds(
        min_delivery_rate=fraction(req.min_delivery_rate),
        max_not_sent_rate=fraction(req.max_not_sent_rate),
        max_stop_rate=fraction(req.max_stop_rate),
    )


def alert(req: CampaignSpec | dict[str, Any], message: Alert) -> dict[str, str]:
    """Deliver ``message`` where the campaign's alerts go (its ``alert_connections``, else
    the deployment's); without any, :func:`deliver` logs it as "would send"."""
    from smsdrop.airflow.alerting import alert_connections, deliver

    value = req.get("alert_connections") if isinstance(req, dict) else req.alert_connections
    return deliver(message, alert_connections(value or None))


def _remote_state(conn_id: str):
    from smsdrop.airflow.hooks import MTargetHook

    hook = MTargetHook(conn_id)
    return lambda name: hook.remote_state(name).state.value


def start(
    params: dict[str, Any],
    run_id: str,
    dag_id: str = "sms_campaign",
    mtarget_conn_id: str = MTARGET_CONN_ID,
) -> Any:
    """Check the parameters, and that the campaign was not submitted already.

    Returns the request (truthy: the run goes on) or False: a submitted campaign is never
    sent again, so the run stops here and says why. A dry run only warns. Names planned by
    a run that is still going are that run's: this one fails rather than drop them.
    """
    from datetime import UTC, datetime

    from smsdrop.campaign import Submission, horizon_problem, submission

    request = _checked(params)
    problem = horizon_problem(request.send_time(), datetime.now(UTC), request.max_days_ahead)
    if problem:
        raise AirflowFailException(problem)
    refusals = account(mtarget_conn_id).campaign_problems(
        long_sms=request.long_sms, ucs2=request.encoding_policy == "ucs2"
    )
    if refusals:
        raise AirflowFailException(
            "campaign parameters: "
            + "; ".join(str(InputError(why, field=name)) for name, why in refusals)
        )
    with warehouse_from_connection(WAREHOUSE_CONN_ID) as warehouse:
        warehouse.migrate()
        check = submission(warehouse, request.campaign_id, _remote_state(mtarget_conn_id))
        if check.state is Submission.SUBMITTED:
            if request.dry_run:
                log.warning("%s (dry run: going on, nothing will be uploaded)", check.detail)
                return request.to_dict()
            log.warning("%s", check.detail)
            return False
        if check.state is Submission.STALE and not request.dry_run:
            holder = _planned_by(warehouse, request.campaign_id)
            if holder and holder != run_id and _running(dag_id, holder):
                raise AirflowFailException(
                    f"campaign {request.campaign_id} is being submitted by run {holder}: "
                    "this run sends nothing"
                )
            log.warning("%s", check.detail)
            warehouse.forget_planned(request.campaign_id, [f["name"] for f in check.files])
        warehouse.record_campaign(
            request.campaign_id,
            request.service_id,
            status="dry_run" if request.dry_run else "preparing",
            parameters=request.to_dict(),
        )
    log.info("campaign %s: %s", request.campaign_id, check.detail)
    return request.to_dict()


def _planned_by(warehouse: Any, campaign_id: str) -> str | None:
    """The run that recorded the campaign's planned names (see :func:`record_names`)."""
    row = warehouse.campaign(campaign_id) or {}
    return (row.get("parameters") or {}).get("planned_by")


def _running(dag_id: str, run_id: str) -> bool:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    try:
        state = RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id)
    except Exception:  # noqa: BLE001 - unknown (deleted run): not running
        return False
    return str(state) in ("queued", "running")


def extract(request: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The audience from the warehouse into the run's staging folder (Parquet)."""
    from smsdrop.audience import audience_query
    from smsdrop.campaign import AUDIENCE_FILE, extract_audience

    req = _spec(request)
    try:  # checked in the warehouse's own dialect before any connection is opened
        audience_query(req.audience, dialect=warehouse_dialect(WAREHOUSE_CONN_ID))
    except InputError as error:
        raise AirflowFailException(f"audience: {error}") from None
    folder = staging.run_folder(req.campaign_id, run_id)
    with (
        staging.working_dir(folder) as local,
        warehouse_from_connection(WAREHOUSE_CONN_ID, read_only=True) as warehouse,
    ):
        try:
            rows = extract_audience(warehouse, req, local / AUDIENCE_FILE, batch_rows=BATCH_ROWS)
        except InputError as error:
            raise AirflowFailException(f"audience: {error}") from None
    log.info("audience: %d rows, columns %s, staged in %s", rows, req.columns(), folder)
    return {"staging": str(folder), "rows": rows}


def prepare(request: dict[str, Any], extracted: dict[str, Any]) -> dict[str, Any]:
    """Validate, drop opt-outs and duplicates, plan the slot, write the SEND files."""
    from smsdrop.campaign import AUDIENCE_FILE, prepare_staged, summary_lines
    from smsdrop.pricing import BudgetExceeded

    req = _spec(request)
    folder = staging.ObjectStoragePath(extracted["staging"])
    with staging.working_dir(folder, fetch=True) as local:
        try:
            summary = prepare_staged(
                lambda: warehouse_from_connection(WAREHOUSE_CONN_ID),
                req,
                local,
                batch_rows=BATCH_ROWS,
                max_records=MAX_RECORDS,
                account=account(),
                prices=prices(),
                contract=True,
            )
        except BudgetExceeded as error:  # the SEND files are gone: nothing can be uploaded
            raise AirflowFailException(f"budget stop: {error.reason}") from None
        except InputError as error:
            raise AirflowFailException(f"preparation: {error}") from None
        status = "dry_run" if req.dry_run else ("prepared" if summary.valid else "empty")
        with warehouse_from_connection(WAREHOUSE_CONN_ID) as warehouse:
            warehouse.record_campaign(
                req.campaign_id, req.service_id, status=status, summary=summary
            )
        (local / AUDIENCE_FILE).unlink(missing_ok=True)  # served: personal data
    facts = summary.as_dict()
    for line in summary_lines(facts):
        log.info("%s", line)
    if facts.get("cost"):
        log.info("%s", cost_line(facts["cost"], req.dry_run))
    files = [
        {
            "local_path": str(folder / f["name"]),
            "remote_name": f["name"],
            "records": f["rows"],
            "sha256": f["sha256"],
        }
        for f in facts["files"]
    ]
    return {"summary": facts, "files": files, "staging": str(folder)}


def cost_line(cost: dict[str, Any], dry_run: bool = False) -> str:
    """The estimate as the task log (and the dry run) shows it."""
    by_country = ", ".join(f"{k} {v:g}" for k, v in cost["by_country"].items())
    by_encoding = ", ".join(f"{k} {v:g}" for k, v in cost["by_encoding"].items())
    return (
        f"estimated cost{' (dry run)' if dry_run else ''}: {cost['total']:g} "
        f"{cost['currency']} (by country: {by_country}; by encoding: {by_encoding})"
    )


def contract(summary: dict[str, Any]) -> dict[str, Any]:
    """The great-expectations contract on the SEND files, as ``prepare`` checked it beside
    the preparation (each file as soon as it was written, the opt-outs that arrived
    meanwhile at the end: :mod:`smsdrop.contract_process`); fails the run (no retry) when
    the files break it."""
    result = summary.get("contract")
    if result is None:  # a summary from before the contract was checked beside prepare
        raise AirflowFailException("no data contract result: prepare the campaign again")
    for item in result["expectations"]:
        log.info(
            "contract %s %s(%s): %s, %d unexpected of %d",
            item["file"],
            item["expectation"],
            item["column"],
            "ok" if item["success"] else "FAILED",
            item["unexpected_count"],
            item["element_count"],
        )
    if not result["success"]:
        from smsdrop.upload_contract import ContractResult

        failures = ContractResult(**result).describe_failures()
        raise AirflowFailException(f"data contract broken: {failures}")
    return result


def record_names(
    request: dict[str, Any], prepared: dict[str, Any], run_id: str, ti: Any = None
) -> list[dict[str, Any]]:
    """Record the SEND names as ``planned`` before any upload; returns the uploads to make
    (the upload operator's arguments): none for a dry run or an audience without a valid
    recipient. Pushes ``upload_at`` (XCom): the slot less the lead time, when the uploads
    may start (``wait_upload_time`` waits for it)."""
    from datetime import datetime

    from smsdrop.campaign import upload_time

    req = _spec(request)
    files = prepared["files"]
    summary = prepared["summary"]
    if req.dry_run:
        log.info("dry run: %d file(s) prepared, nothing uploaded", len(files))
        return []
    if not files:
        log.warning(
            "campaign %s: no valid recipient among %d rows (%s): nothing to send",
            req.campaign_id,
            summary["recipients"],
            summary["rejects_by_reason"],
        )
        return []
    _check_slot(req.window_end, summary)
    names = sorted(f["remote_name"] for f in files)
    with warehouse_from_connection(WAREHOUSE_CONN_ID) as warehouse, warehouse.transaction():
        warehouse.lock_campaign(req.campaign_id)
        recorded = warehouse.campaign_files(req.campaign_id)
        holder = _planned_by(warehouse, req.campaign_id)
        if recorded and (holder != run_id or sorted(r["name"] for r in recorded) != names):
            raise AirflowFailException(
                f"campaign {req.campaign_id} has files recorded by "
                f"{'run ' + holder if holder != run_id else 'an earlier try of this run'} "
                f"({', '.join(r['name'] for r in recorded)}): nothing is uploaded by this run"
            )
        for f in files:
            warehouse.record_file_state(
                f["remote_name"],
                FileState.PLANNED,
                campaign_id=req.campaign_id,
                row_count=f["records"],
                sha256=f["sha256"],
            )
        warehouse.record_campaign(
            req.campaign_id,
            req.service_id,
            status="planned",
            parameters={**req.to_dict(), "planned_by": run_id},
        )
        added = _record_history(warehouse, req, files, datetime.fromisoformat(summary["send_at"]))
        if summary.get("cost"):
            warehouse.record_campaign_prices(req.campaign_id, prices())
            warehouse.record_estimate(req.campaign_id, _cost(summary["cost"]))
    log.info("send history: %d number(s) recorded for the frequency caps", added)
    upload_at = upload_time(datetime.fromisoformat(summary["send_at"]), req.upload_lead_minutes)
    if ti is not None:
        ti.xcom_push(key="upload_at", value=upload_at.isoformat())
    log.info("planned: %s; uploads from %s", ", ".join(names), upload_at.isoformat())
    return files


def _record_history(
    warehouse: Any, req: CampaignSpec, files: list[dict[str, Any]], send_at: Any
) -> int:
    """Each SEND file's numbers into the send history (idempotent: a retry adds nothing),
    read from the staged file itself: exactly what will be uploaded."""
    from smsdrop.csvfile import read_records
    from smsdrop.record_rules import to_int64

    added = 0
    for f in files:
        with staging.local_file(f["local_path"]) as local:
            table = read_records(local.read_bytes(), f["remote_name"]).table
        numbers = to_int64(table.column("msisdn"))
        added += warehouse.record_send_history(
            f["remote_name"], req.campaign_id, send_at, numbers[numbers >= 0]
        )
    return added


def _cost(shown: dict[str, Any]) -> Any:
    """The estimate of the summary (``Cost.as_dict()``) as a :class:`Cost` to record."""
    from decimal import Decimal

    from smsdrop.pricing import Cost

    def amounts(values: dict[str, float]) -> dict[str, Decimal]:
        return {k: Decimal(str(v)) for k, v in values.items()}

    return Cost(
        shown["currency"],
        Decimal(str(shown["total"])),
        amounts(shown["by_country"]),
        amounts(shown["by_encoding"]),
    )


def _check_slot(window_end: str | None, summary: dict[str, Any] | None) -> None:
    from datetime import UTC, datetime

    from smsdrop.campaign import slot_problem

    if not summary:
        return
    problem = slot_problem(
        datetime.fromisoformat(summary["send_at"]),
        summary.get("countries") or {},
        window_end,
        datetime.now(UTC),
    )
    if problem:
        raise AirflowFailException(problem)


def fence(context: Any) -> None:
    """Before an upload (its ``pre_execute``): the name must still be this run's plan.

    A later run may have dropped names it found planned by a finished run; clearing this
    run's upload afterwards must not send them: the task fails instead, uploading nothing.
    """
    task = context["task"]
    name = task.remote_name or staging.ObjectStoragePath(str(task.local_path)).name
    request = context["params"]
    with warehouse_from_connection(WAREHOUSE_CONN_ID) as warehouse:
        recorded = {f["name"] for f in warehouse.campaign_files(request["campaign_id"])}
        holder = _planned_by(warehouse, request["campaign_id"])
    if name not in recorded or holder != context["run_id"]:
        raise AirflowFailException(
            f"{name} is no longer planned by this run (planned by {holder or 'no run'}): "
            "not uploading it"
        )
    ti = context.get("ti")
    summary = ti.xcom_pull(task_ids="prepare", key="summary") if ti is not None else None
    _check_slot(request.get("window_end"), summary)


def before_upload(context: Any) -> None:
    """The upload's ``pre_execute``: the :func:`fence` (and slot check), then
    :func:`guard_optouts` with the spec :func:`start` checked."""
    fence(context)
    task = context["task"]
    name = task.remote_name or staging.ObjectStoragePath(str(task.local_path)).name
    guard_optouts(task, name, _spec(context["ti"].xcom_pull(task_ids="start")))


def guard_optouts(task: Any, name: str, req: CampaignSpec) -> None:
    """Right before the upload: load the opt-outs the provider published since the last
    load, and remove from the file any number they hold (docs/PROTOCOL.md, "The opt-out
    guarantee").

    A name the provider holds already is never touched (the upload then sends nothing). A
    refresh that fails is tolerated only while the last complete load is younger than
    ``optout_max_age_minutes``; otherwise the upload fails, saying so, and is retried. A
    number found is removed from the staged file (same name, new SHA-256 recorded), its
    row saved as an ``OPTED_OUT`` reject; the task's ``records`` and ``sha256`` follow.
    """
    from datetime import UTC, datetime, timedelta

    import paramiko

    from smsdrop.airflow.exceptions import MTargetTransferError
    from smsdrop.airflow.hooks import MTargetHook
    from smsdrop.airflow.reports_task import RefreshFailed, refresh_optouts
    from smsdrop.campaign import ROWS_SUFFIX, late_optouts

    hook = MTargetHook(task.mtarget_conn_id)
    with hook.get_managed_conn():
        if hook.remote_state(name).state.submitted:
            log.info("%s is with the provider already: the file is not touched", name)
            return
        with warehouse_from_connection(WAREHOUSE_CONN_ID) as warehouse:
            warehouse.migrate()
            try:
                result = refresh_optouts(hook, warehouse)
                log.info("opt-outs refreshed before uploading %s: %s", name, result.as_dict())
            except (
                RefreshFailed,
                MTargetTransferError,
                OSError,
                EOFError,
                paramiko.SSHException,
            ) as error:
                last = warehouse.last_optout_load()
                limit = timedelta(minutes=req.optout_max_age_minutes)
                age = None if last is None else datetime.now(UTC) - last
                if age is None or age > limit:
                    when = "never" if last is None else f"{age.total_seconds() / 60:.0f} min ago"
                    raise AirflowException(
                        f"not uploading {name}: the opt-outs could not be refreshed "
                        f"({type(error).__name__}: {str(error)[:300]}) and the last complete "
                        f"load was {when} (optout_max_age_minutes="
                        f"{req.optout_max_age_minutes}); retried"
                    ) from None
                log.warning(
                    "opt-out refresh failed (%s); the last complete load, %.0f min ago, is "
                    "recent enough (max %d)",
                    type(error).__name__,
                    age.total_seconds() / 60,
                    req.optout_max_age_minutes,
                )
            optouts = warehouse.optout_numbers()
            with staging.editable(str(task.local_path), (ROWS_SUFFIX,)) as local:
                late = late_optouts(local, optouts)
                if late is None:
                    log.info("%s: no number in it opted out since it was written", name)
                    return
                # The rejects first, the file after: a crash in between loses no row.
                with warehouse.transaction():
                    new = warehouse.save_late_optouts(req.campaign_id, late.removed)
                    warehouse.record_file_state(
                        name, FileState.PLANNED, row_count=late.records, byte_count=late.bytes,
                        sha256=late.sha256,
                    )  # fmt: skip
                late.write(local)
    log.warning(
        "%s: %d number(s) opted out since the file was written: removed before its upload "
        "(%d new reject(s) OPTED_OUT); %d record(s) left",
        name,
        len(late.removed),
        new,
        late.records,
    )
    task.records, task.sha256 = late.records, late.sha256
    if late.records == 0:
        raise AirflowSkipException(f"{name}: every recipient opted out: nothing to upload")


def record_outcome(
    request: dict[str, Any] | None,
    files: list[dict[str, Any]] | None,
    mtarget_conn_id: str = MTARGET_CONN_ID,
) -> dict[str, str]:
    """Record each file's state as the provider shows it; fail naming rejected files, and
    files never accepted (their wait failed: no ACK will come, so none is awaited); all
    accepted: the alert "N SMS programmed" (counts after the opt-out guard)."""
    from smsdrop.airflow.alerting import AlertedFailure
    from smsdrop.airflow.hooks import MTargetHook
    from smsdrop.alerts import started
    from smsdrop.naming import parse_name

    if not request or not files:
        raise AirflowSkipException("nothing was planned for upload")
    req = _spec(request)
    hook = MTargetHook(mtarget_conn_id)
    states: dict[str, str] = {}
    with hook.get_managed_conn(), warehouse_from_connection(WAREHOUSE_CONN_ID) as warehouse:
        for f in files:  # one SFTP session for every file
            found = hook.remote_state(f["remote_name"]).state
            states[f["remote_name"]] = (
                warehouse.record_file_state(f["remote_name"], found)
                if found is not RemoteState.ABSENT
                else FileState.PLANNED.value
            )
        rejected = sorted(n for n, s in states.items() if s == FileState.REJECT)
        if rejected:
            status = "rejected"
        elif all(s == FileState.DONE for s in states.values()):
            status = "submitted"
        else:
            status = "submitting"
        warehouse.record_campaign(req.campaign_id, req.service_id, status=status)
        recorded = warehouse.campaign_files(req.campaign_id)  # row counts after the guard
    log.info("file states: %s", states)
    if rejected:  # each rejected file had its alert when wait_done saw it
        raise AlertedFailure(
            f"the provider REJECTED {', '.join(rejected)}: nothing of those files was sent"
        )
    # A file handed over but never accepted: its wait_done failed (stuck, gone…) and alerted;
    # no ACK will come, so none is awaited. A file still planned with no rows left was
    # skipped (every recipient opted out since); one with rows was never uploaded (its
    # upload failed for good): the campaign was not sent whole.
    records = {r["name"]: r["row_count"] for r in recorded}
    unaccepted = [
        f"{n} ({s})"
        for n, s in sorted(states.items())
        if s != FileState.DONE and not (s == FileState.PLANNED and not records.get(n))
    ]
    if unaccepted:
        raise AlertedFailure(
            f"not every file was accepted by the provider: {', '.join(unaccepted)}; no ACK "
            "is awaited"
        )
    done = [n for n, s in states.items() if s == FileState.DONE]
    if not done:
        return states
    programmed = sum(int(records.get(n) or 0) for n in done)
    send_at = min(parse_name(n).at for n in done).isoformat()
    alert(req, started(req.campaign_id, programmed, len(done), send_at))
    return states


def load_acks(
    request: dict[str, Any], files: list[dict[str, Any]], mtarget_conn_id: str = MTARGET_CONN_ID
) -> dict[str, int]:
    """Each file's ACK report into ``sms_deliveries`` (idempotent)."""
    from smsdrop.airflow.alerting import AlertedFailure
    from smsdrop.airflow.hooks import MTargetHook
    from smsdrop.alerts import ack_alerts
    from smsdrop.naming import FileKind, parse_name
    from smsdrop.reports import parse_ack_tolerant

    req = _spec(request)
    hook = MTargetHook(mtarget_conn_id)
    counts = {"files": 0, "rows": 0, "new": 0, "quarantined": 0}
    with hook.get_managed_conn():
        reports = {}
        for f in files:  # read first: the warehouse is held only for the loads
            report = parse_name(f["remote_name"]).with_kind(FileKind.ACK).name
            reports[report] = (f["remote_name"], hook.read_from(hook.report_path(report), 0))
    with warehouse_from_connection(WAREHOUSE_CONN_ID) as warehouse:
        for report, (send_file, data) in reports.items():
            # An untrusted file: a record that does not parse is set aside, not fatal.
            chunk = parse_ack_tolerant(data, report)
            with warehouse.transaction():
                result = warehouse.load_acks(
                    chunk.table, report, send_file=send_file, campaign_id=req.campaign_id
                )
                warehouse.quarantine_records(report, chunk.quarantined)
            log.info(
                "%s: %d lines, %d new deliveries, %d set aside",
                report,
                result.rows,
                result.new,
                len(chunk.quarantined),
            )
            for q in chunk.quarantined:  # reasons are masked; the raw line is never logged
                log.warning(
                    "%s: record at byte %d set aside (%s): %s", report, q.offset, q.field, q.reason
                )
            counts["files"] += 1
            counts["rows"] += result.rows
            counts["new"] += result.new
            counts["quarantined"] += len(chunk.quarantined)
        warehouse.record_campaign(req.campaign_id, req.service_id, status="acknowledged")
        stats = warehouse.campaign_stats(req.campaign_id)
    log.info("campaign stats: %s", {k: v for k, v in stats.items() if k != "parameters"})
    breached = ack_alerts(req.campaign_id, stats, thresholds(req))
    for message in breached:
        alert(req, message)
    if breached:  # loaded and alerted; the run must not end as a silent success
        raise AlertedFailure(
            f"campaign {req.campaign_id}: the ACK is under its thresholds: "
            + "; ".join(m.subject.split(": ", 1)[1] for m in breached)
            + " (alert sent; the deliveries are loaded)"
        )
    return counts


def file_accepted(context: Any) -> None:
    """``wait_done``'s ``on_success_callback``: the provider's first notice, the file was
    accepted (``.done``), with its record count (after the opt-out guard: the upload's)."""
    from smsdrop.alerts import accepted

    task = context["task"]
    metadata = task.name if isinstance(task.name, dict) else {}
    records = int(metadata.get("records") or 0)
    params = context.get("params") or {}
    alert(dict(params), accepted(str(params.get("campaign_id")), task.send().name, records))


def tidy_remote(files: list[dict[str, Any]], mtarget_conn_id: str = MTARGET_CONN_ID) -> int:
    """Delete the processed remote files, as the provider's good practice asks: each SEND
    file's ``Send/name.done`` or ``Send/name.reject`` and its loaded ACK; then, once
    loaded, every report of a campaign older than the provider's retention horizon
    (:func:`smsdrop.airflow.reports_task.remove_old_reports`, 30 days). One SFTP session.
    Returns how many were removed."""
    from smsdrop.airflow.hooks import MTargetHook
    from smsdrop.airflow.reports_task import remove_old_reports
    from smsdrop.naming import FileKind, parse_name

    hook = MTargetHook(mtarget_conn_id)
    removed = 0
    with hook.get_managed_conn():
        for f in files or []:
            name = parse_name(f["remote_name"])
            for remove, target in (
                (hook.delete_send_file, name.with_ext(RemoteState.DONE)),
                (hook.delete_send_file, name.with_ext(RemoteState.REJECT)),
                (hook.delete_report, name.with_kind(FileKind.ACK).name),
            ):
                try:
                    remove(target)
                    removed += 1
                except FileNotFoundError:
                    log.info("%s is not there", target)
        with warehouse_from_connection(WAREHOUSE_CONN_ID) as warehouse:
            removed += len(remove_old_reports(hook, warehouse))
    log.info("removed %d processed remote file(s)", removed)
    return removed


def remove_staged(campaign_id: str, run_id: str) -> bool:
    """Remove the run's staging folder: it holds personal data."""
    folder = staging.run_folder(campaign_id, run_id)
    removed = staging.remove(folder)
    log.info("staging %s %s", folder, "removed" if removed else "was empty")
    return removed
