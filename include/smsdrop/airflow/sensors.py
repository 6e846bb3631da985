"""Wait for the provider's verdict on a SEND file, and for its ACK report.

* :class:`MTargetFileStatusSensor` — ``name.done`` succeeds; ``name.reject`` fails the task
  with the file's name and no retry (:class:`~smsdrop.airflow.exceptions.MTargetRejectedError`
  is an ``AirflowFailException``). A sensor never uploads, and its failure never re-runs
  the upload task: a rejected name is spent, and only a new file under a new name can
  send the campaign. A file still ``.csv`` or ``.lock`` ``lock_deadline_minutes`` after
  the wait began (right after its upload) fails the task too, naming the file and how long:
  the provider processes a file in minutes, so that needs a person, not a longer wait.
* :class:`MTargetReportSensor` — ``ACK-….csv`` (or another report kind) of a SEND name in
  ``Report/``. Its timeout follows the spec by default: the stats come 1 day after the
  send below 10,000 SMS and 4 days after above, counted from the later of now and the
  name's scheduled time, plus a margin.

Both are deferrable by default — they wait hours or days and must not hold a worker slot —
and defer with ``method_name="execute_complete"`` (what works under ``airflow dags test``;
FIELD-NOTES). Everything the resume needs is in the trigger's event. ``deferrable=False``
pokes with the synchronous hook (``mode="reschedule"`` works too). Before deferring, one
synchronous check: a file that is already ``.done`` costs no deferral, and a refused login
fails in the worker at once. The synchronous check and the trigger gather the same sizes and
ask the same function what they mean (:func:`smsdrop.dropbox.file_verdict`,
:func:`smsdrop.dropbox.report_verdict`), so a poke and a poll cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import paramiko
from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from smsdrop.airflow.exceptions import (
    MTargetAuthError,
    MTargetConfigError,
    MTargetFailure,
    MTargetHostKeyError,
    MTargetRejectedError,
    MTargetTransferError,
)
from smsdrop.airflow.hooks import MTargetHook, send_name
from smsdrop.airflow.triggers import (
    MTargetFileStatusTrigger,
    MTargetReportTrigger,
    MTargetTrigger,
    verdict_event,
)
from smsdrop.dropbox import (
    ACK_LARGE_DELAY,
    FileKind,
    Verdict,
    ack_delay,
    file_verdict,
    report_verdict,
)
from smsdrop.naming import ProviderName

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "MTargetFileStatusSensor",
    "MTargetReportSensor",
    "UploadTimeSensor",
    "ack_timeout",
]


def ack_timeout(
    send_at: datetime,
    sms_count: int | None,
    margin: timedelta,
    now: datetime | None = None,
) -> timedelta:
    """How long to wait for an ACK from ``now``: the spec's delay after the send
    (:func:`smsdrop.dropbox.ack_delay`; unknown ``sms_count``: 4 days), plus a margin.

    The send happens at the name's scheduled time, or at once when that is past.
    """
    now = now or datetime.now(UTC)
    return max(now, send_at) + ack_delay(sms_count) + margin - now


def _outcome_error(outcome: Mapping[str, Any]) -> Exception:
    """The exception an error event stands for: no retry unless the network is to blame."""
    message = str(outcome.get("message") or "the wait ended in an error")
    reason = outcome.get("reason")
    if reason == "rejected":
        return MTargetRejectedError(message)
    if reason == "host_key":
        return MTargetHostKeyError(message)
    if reason == "auth":
        return MTargetAuthError(message)
    if reason == "absent":
        return MTargetConfigError(message)
    if reason == "stuck":  # a retry would only wait again: a person must look
        return MTargetFailure(message)
    if reason == "timeout":
        return AirflowSensorTimeout(message)
    return MTargetTransferError(message)  # connection: the sensor's retry waits again


class _MTargetSensor(BaseSensorOperator):
    """Shared plumbing: the name, the synchronous check, deferral and resumption."""

    template_fields: Sequence[str] = ("name", "mtarget_conn_id")
    #: The event's ``target``, as the trigger of the same wait sets it.
    target: str = "status"

    def __init__(
        self,
        *,
        name: str | Mapping[str, Any],
        mtarget_conn_id: str = MTargetHook.default_conn_name,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.mtarget_conn_id = mtarget_conn_id
        self.deferrable = deferrable

    # --- inputs ------------------------------------------------------------------------

    def send(self) -> ProviderName:
        """The SEND name awaited; ``name`` may be the upload operator's metadata."""
        name = self.name["name"] if isinstance(self.name, Mapping) else self.name
        return send_name(str(name))

    # --- to override ---------------------------------------------------------------------

    def check(self, hook: MTargetHook) -> dict[str, Any] | None:  # pragma: no cover
        """One synchronous look: an event (trigger schema) when the wait is over."""
        raise NotImplementedError

    def trigger(self, hook: MTargetHook, deadline: datetime) -> MTargetTrigger:  # pragma: no cover
        raise NotImplementedError

    def wait_timeout(self) -> float:
        return float(self.timeout)

    def outcome(self, verdict: Verdict) -> dict[str, Any] | None:
        """The event of ``verdict`` (trigger schema), or None while the wait goes on."""
        return verdict_event(verdict, name=self.send().name, target=self.target, log=self.log)

    # --- Airflow entry points -----------------------------------------------------------

    def poke(self, context: Context) -> PokeReturnValue | bool:
        hook = MTargetHook(self.mtarget_conn_id)
        try:
            outcome = self.check(hook)
        except MTargetFailure:
            raise
        except (OSError, EOFError, paramiko.SSHException, MTargetTransferError) as error:
            # A poll that could not reach the server is a poll without an answer; the
            # sensor's timeout bounds how long that may last.
            self.log.warning(
                "Could not check %s: %s: %s", self.send().name, type(error).__name__, error
            )
            return False
        if outcome is None:
            return False
        return PokeReturnValue(True, xcom_value=self._finish(outcome))

    def execute(self, context: Context) -> Any:
        self.timeout = self.wait_timeout()
        if not self.deferrable:
            return super().execute(context)
        hook = MTargetHook(self.mtarget_conn_id)
        try:
            outcome = self.check(hook)
        except (OSError, EOFError, paramiko.SSHException, MTargetTransferError) as error:
            self.log.warning("First check failed (%s); deferring anyway", type(error).__name__)
            outcome = None
        if outcome is not None:
            return self._finish(outcome)
        deadline = datetime.now(UTC) + timedelta(seconds=self.timeout)
        trigger = self.trigger(hook, deadline)
        self.log.info(
            "Deferring: waiting for %s until %s (poll every %g s)",
            trigger.awaited_path(),
            deadline.isoformat(timespec="seconds"),
            self.poke_interval,
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume from the trigger: everything needed is in ``event`` (not in kwargs)."""
        if not event:
            raise AirflowException(f"{self.task_id}: resumed without a trigger event")
        return self._finish(event)

    def _finish(self, outcome: Mapping[str, Any]) -> dict[str, Any]:
        if outcome.get("status") != "success":
            raise _outcome_error(outcome)
        self.log.info("%s", outcome.get("message"))
        return {
            "name": outcome.get("name"),
            "state": outcome.get("state"),
            "path": outcome.get("path"),
            "bytes": outcome.get("bytes"),
        }


class MTargetFileStatusSensor(_MTargetSensor):
    """
    Wait until the provider has accepted (``.done``) or rejected (``.reject``) a SEND file.

    Returns (XCom) ``{"name", "state": "done", "path", "bytes"}``. A rejected file fails the
    task at once, naming the file, without retries; a name absent from ``Send/`` fails too.

    :param name: the SEND file name, or the upload operator's metadata (templated)
    :param mtarget_conn_id: the provider's SFTP connection (templated)
    :param deferrable: wait in the triggerer (default) or poke
    :param poke_interval: seconds between checks (default 30)
    :param timeout: seconds before giving up (default 2 hours: processing is immediate,
        a 1,000,000-record file takes minutes); stretched past ``lock_deadline_minutes``
    :param lock_deadline_minutes: a file still ``.csv``/``.lock`` this long after the wait
        began fails the task (no retry), naming the file; None: no deadline (templated)
    """

    template_fields: Sequence[str] = ("name", "mtarget_conn_id", "lock_deadline_minutes")

    def __init__(
        self,
        *,
        poke_interval: float = 30,
        timeout: float | timedelta = timedelta(hours=2),
        lock_deadline_minutes: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.lock_deadline_minutes = lock_deadline_minutes
        self.since: datetime | None = None

    def lock_deadline(self) -> timedelta | None:
        """How long a handed-over file may stay unprocessed (None: as long as the timeout)."""
        value = self.lock_deadline_minutes
        if value in (None, "", "None"):
            return None
        return timedelta(minutes=float(value))  # type: ignore[arg-type]

    def wait_timeout(self) -> float:
        """The timeout, outlasting the lock deadline: a stuck file fails with its own
        message, not with the sensor's timeout."""
        deadline = self.lock_deadline()
        if deadline is None:
            return float(self.timeout)
        margin = max(60.0, 2 * float(self.poke_interval))
        return max(float(self.timeout), deadline.total_seconds() + margin)

    def execute(self, context: Context) -> Any:
        # The wait is counted from this try's start, which follows the upload (its upstream)
        # by seconds and survives a deferral; the trigger is handed it.
        ti = context.get("ti") if context else None
        started = getattr(ti, "start_date", None)
        self.since = started if isinstance(started, datetime) else datetime.now(UTC)
        return super().execute(context)

    def check(self, hook: MTargetHook) -> dict[str, Any] | None:
        name = self.send().name
        if self.since is None:
            self.since = datetime.now(UTC)
        verdict = file_verdict(
            name,
            hook.send_dir,
            hook.remote_state(name).sizes,
            waited=datetime.now(UTC) - self.since,
            deadline=self.lock_deadline(),
        )
        return self.outcome(verdict)

    def trigger(self, hook: MTargetHook, deadline: datetime) -> MTargetTrigger:
        lock_deadline = self.lock_deadline()
        return MTargetFileStatusTrigger(
            name=self.send().name,
            mtarget_conn_id=self.mtarget_conn_id,
            folder=hook.send_dir,
            poll_interval=self.poke_interval,
            deadline=deadline.isoformat(),
            since=(self.since or datetime.now(UTC)).isoformat(),
            lock_deadline_minutes=None
            if lock_deadline is None
            else lock_deadline / timedelta(minutes=1),
        )


class MTargetReportSensor(_MTargetSensor):
    """
    Wait for a report of a SEND file in ``Report/`` (the ACK by default).

    Returns (XCom) ``{"name", "state": "present", "path", "bytes"}`` where ``path`` is the
    report's remote path.

    :param name: the SEND file name, or the upload operator's metadata (templated)
    :param kind: ``ACK`` (default), ``STOP`` or ``SMSMO``
    :param sms_count: SMS of the campaign, which picks the spec's delay (1 day below
        10,000, 4 days above); default the metadata's ``records``; unknown → 4 days
        (templated)
    :param margin: added to the spec's delay (default 12 hours)
    :param timeout: seconds (or timedelta) to wait instead of the spec's delay + margin
    :param stable_for: seconds the report's size must hold still before it counts
    :param poke_interval: seconds between checks (default 600)
    """

    template_fields: Sequence[str] = ("name", "mtarget_conn_id", "sms_count")
    target = "report"

    def __init__(
        self,
        *,
        kind: FileKind | str = FileKind.ACK,
        sms_count: int | str | None = None,
        margin: timedelta = timedelta(hours=12),
        timeout: float | timedelta | None = None,
        stable_for: float = 2.0,
        poke_interval: float = 600,
        **kwargs: Any,
    ) -> None:
        # BaseSensorOperator needs a number now; the spec's timeout depends on templated
        # inputs and on the time the wait starts, so it is computed in execute().
        super().__init__(
            poke_interval=poke_interval,
            timeout=timeout if timeout is not None else ACK_LARGE_DELAY + margin,
            **kwargs,
        )
        self.kind = FileKind(kind)
        self.sms_count = sms_count
        self.margin = margin
        self.explicit_timeout = timeout is not None
        self.stable_for = stable_for

    def report_name(self) -> str:
        return self.send().with_kind(self.kind).name

    def count(self) -> int | None:
        value = self.sms_count
        if value in (None, "", "None") and isinstance(self.name, Mapping):
            value = self.name.get("records")
        return None if value in (None, "", "None") else int(value)  # type: ignore[arg-type]

    def wait_timeout(self) -> float:
        if self.explicit_timeout:
            return float(self.timeout)
        wait = ack_timeout(self.send().at, self.count(), self.margin)
        self.log.info(
            "Report timeout per the spec: %s (%s SMS, send at %s, margin %s)",
            wait,
            self.count() if self.count() is not None else "unknown",
            self.send().at.isoformat(),
            self.margin,
        )
        return wait.total_seconds()

    def check(self, hook: MTargetHook) -> dict[str, Any] | None:
        report = self.report_name()
        size = again = hook.report_size(report)
        if size is not None and self.stable_for > 0:
            time.sleep(self.stable_for)
            again = hook.report_size(report)
        return self.outcome(report_verdict(hook.report_path(report), size, again))

    def trigger(self, hook: MTargetHook, deadline: datetime) -> MTargetTrigger:
        return MTargetReportTrigger(
            name=self.send().name,
            report_name=self.report_name(),
            mtarget_conn_id=self.mtarget_conn_id,
            folder=hook.report_dir,
            poll_interval=self.poke_interval,
            deadline=deadline.isoformat(),
            stable_for=self.stable_for,
        )


class UploadTimeSensor(BaseSensorOperator):
    """
    Wait, deferrably, until a campaign's files may be uploaded: ``upload_at``, the slot less
    the run's lead time (``upload_lead_minutes``).

    The provider cannot cancel a scheduled file, and an opt-out published after the upload
    cannot stop it: a campaign planned at 01:30 for 10:00 uploads at 09:45, not at 01:30.
    An empty ``upload_at`` (nothing was planned) or a moment already past returns at once.

    :param upload_at: ISO 8601 (templated; ``plan``'s ``upload_at`` XCom)
    """

    template_fields: Sequence[str] = ("upload_at",)
    ui_color = "#fff3d6"

    def __init__(self, *, upload_at: str | None, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.upload_at = upload_at

    def moment(self) -> datetime | None:
        text = str(self.upload_at or "").strip()
        if text in ("", "None"):
            return None
        when = datetime.fromisoformat(text)
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    def poke(self, context: Context) -> bool:
        moment = self.moment()
        return moment is None or moment <= datetime.now(UTC)

    def execute(self, context: Context) -> None:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        moment = self.moment()
        if moment is None or moment <= datetime.now(UTC):
            self.log.info("upload time %s: uploading now", moment.isoformat() if moment else "-")
            return
        self.log.info("waiting until %s to upload (deferred)", moment.isoformat())
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete")

    def execute_complete(self, context: Context, event: Any = None) -> None:
        self.log.info("upload time %s reached", self.upload_at)
