"""Carry :class:`smsdrop.alerts.Alert` to people: mail (the SMTP provider) or a chat webhook.

Where alerts go is configuration, not code: a list of Airflow connection ids (the
``SMSDROP_ALERT_CONNECTIONS`` environment variable, comma-separated, or a DAG's
``alert_connections`` param). Each connection's type picks the channel:

- ``smtp``: the SMTP provider's ``SmtpHook`` (host, port, login, TLS extras as it documents);
  recipients in the ``to`` extra (comma-separated), sender in ``from_email``.
- ``http``/``https``: a JSON POST ``{"text": ..., "alert": {...}}`` to
  ``schema://host:port/endpoint`` (``schema`` http or https, https by default; the path in
  the ``endpoint`` extra), as Airflow's HTTP connections spell a URL (Slack, Mattermost and
  Teams incoming webhooks read ``text``).

A channel that fails is logged and the others still get the alert: a mail server down must
not fail a campaign that was sent. :class:`CampaignAlertNotifier` is the DAG-level failure
callback that turns a failed task into an alert.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final

from airflow.sdk import BaseHook, BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from smsdrop.airflow.exceptions import MTargetRejectedError
from smsdrop.alerts import Alert, failure, rejected

__all__ = ["AlertedFailure", "CampaignAlertNotifier", "alert_connections", "deliver"]

log = logging.getLogger(__name__)
ENV: Final = "SMSDROP_ALERT_CONNECTIONS"
WEBHOOK_TIMEOUT: Final = 10.0
#: A run of digits that could be a phone number: masked in any text we did not build.
_NUMBER_LIKE: Final = re.compile(r"(?<![\w-])\+?[0-9][0-9 .\-]{5,}[0-9](?![\w-])")


def alert_connections(value: str | Sequence[str] | None = None) -> list[str]:
    """The connection ids alerts go to: the given ones, else the environment's."""
    if value is None:
        value = os.environ.get(ENV, "")
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


def _mail(conn_id: str, alert: Alert) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=conn_id) as hook:
        to = hook.conn.extra_dejson.get("to")
        if not to:
            raise ValueError(f"connection {conn_id!r} has no 'to' extra (the recipients)")
        body = "<pre>" + html.escape(alert.text()) + "</pre>"
        hook.send_email_smtp(to=to, subject=alert.subject, html_content=body)


def _webhook(conn_id: str, alert: Alert) -> None:
    conn = BaseHook.get_connection(conn_id)
    # As Airflow's HTTP connections say it: the scheme in ``schema`` (https by default),
    # the path in the ``endpoint`` extra. Only http(s) URLs are ever called.
    scheme = (conn.schema or "https").lower()
    host = conn.host or ""
    if scheme not in ("http", "https") or "://" in host or not host:
        raise ValueError(f"connection {conn_id!r}: a webhook needs a host and schema http(s)")
    endpoint = str(conn.extra_dejson.get("endpoint") or "").lstrip("/")
    url = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "") + f"/{endpoint}"
    data = json.dumps({"text": alert.text(), "alert": alert.as_dict()}).encode()
    import urllib.request  # only when a webhook is called: the DAG file imports this module

    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as answer:
        answer.read()


#: Connection type → how an alert is carried.
CHANNELS: Final[dict[str, Callable[[str, Alert], None]]] = {
    "smtp": _mail,
    "email": _mail,
    "http": _webhook,
    "https": _webhook,
}


def deliver(alert: Alert, conn_ids: Sequence[str]) -> dict[str, str]:
    """Send ``alert`` to every connection; returns each one's outcome ("sent" or why not)."""
    outcomes: dict[str, str] = {}
    if not conn_ids:  # a deployment without alerts configured still shows what it would say
        log.info("alert (would send; no alert connection): %s", alert.subject)
    for conn_id in conn_ids:
        try:
            conn_type = BaseHook.get_connection(conn_id).conn_type or ""
            channel = CHANNELS.get(conn_type)
            if channel is None:
                raise ValueError(f"connection type {conn_type!r} carries no alert")
            channel(conn_id, alert)
        except Exception as error:  # noqa: BLE001 - one channel down must not hide the alert
            outcomes[conn_id] = f"not sent: {type(error).__name__}: {error}"
            log.warning("alert %s to %s not sent: %s", alert.kind, conn_id, error)
        else:
            outcomes[conn_id] = "sent"
            log.info("alert %s sent to %s", alert.kind, conn_id)
    return outcomes


def masked(text: str, limit: int = 300) -> str:
    """Text we did not build (an exception), with anything number-like masked, cut short."""
    shown = _NUMBER_LIKE.sub("<number>", text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


#: The tasks of a campaign run that come before any upload: their failure sent nothing.
BEFORE_UPLOAD: Final = frozenset(
    {"start", "extract", "prepare", "contract", "record_names", "wait_upload_time"}
)
#: What a failure after the first upload tells, instead of "nothing was uploaded".
AFTER_UPLOAD: Final = (
    "Files of this campaign may be with the provider already: look at sms_campaign_files "
    "before triggering anything again (a campaign id is never sent twice)."
)


class AlertedFailure(AirflowFailException):
    """A failure whose alerts the task delivered itself (an ACK under a threshold, a
    rejected file counted again): the failure notifier adds none."""


class CampaignAlertNotifier(BaseNotifier):
    """Task ``on_failure_callback`` (the campaign DAG's ``default_args``): a task that
    failed for good (no retry left) becomes an alert, with the exception's text masked.

    A rejected file becomes the :func:`~smsdrop.alerts.rejected` alert naming it; an
    :class:`AlertedFailure` none (its alerts went out); a failure after the uploads does
    not say "nothing was uploaded".
    """

    template_fields = ("campaign_id",)

    def __init__(self, campaign_id: str = "{{ params.campaign_id }}", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        task_id = getattr(ti, "task_id", "?")
        error = context.get("exception")
        detail = masked(f"{type(error).__name__}: {error}") if error else "no error recorded"
        params = context.get("params") or {}
        conn_ids = alert_connections(params.get("alert_connections") or None)
        if isinstance(error, AlertedFailure):
            log.info("task %s failed; its alerts were sent by the task", task_id)
            return
        if isinstance(error, MTargetRejectedError):
            alert = rejected(self.campaign_id, _send_file(context.get("task"), task_id))
        else:
            alert = failure(self.campaign_id, task_id, f"task {task_id} failed", detail)
            if task_id not in BEFORE_UPLOAD:
                alert = replace(alert, lines=(alert.lines[0], AFTER_UPLOAD))
        deliver(alert, conn_ids)


def _send_file(task: Any, fallback: str) -> str:
    """The SEND file a status sensor waited for (its ``send()``), else ``fallback``."""
    try:
        return str(task.send().name)
    except Exception:  # noqa: BLE001 - a task without a SEND name: the alert still goes
        return fallback
