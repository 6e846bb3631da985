"""Triggers that wait on the provider's folders without holding a worker slot.

They poll with :class:`~smsdrop.airflow.async_hook.MTargetHookAsync`, the SFTP provider's
asyncssh-based hook under the sync hook's rules (the connection's ``host_key`` extra is the
pinned known host, ``known_hosts: none`` is refused, no agent or ``~/.ssh`` key is offered,
no CBC, 3DES or HMAC-MD5), one short session per poll: a wait can last four
days, and a session kept open that long dies in some firewall anyway.

Every event has one schema, whichever trigger fires it and however it ends::

    {"status": "success" | "error",
     "reason": None | "rejected" | "absent" | "stuck" | "timeout" | "host_key" | "auth"
               | "connection",
     "name": "SEND-….csv",          # the SEND file the wait is about
     "target": "status" | "report",
     "path": "Send/SEND-….done",    # the remote file found, or awaited
     "state": "done" | "reject" | "absent" | "present" | …,
     "bytes": int | None,
     "message": "what happened, for the log and the error"}

The event carries everything the task needs to resume: under ``airflow dags test`` the
``kwargs`` given to ``defer()`` arrive as None (FIELD-NOTES), the event always arrives.

A trigger also keeps its own ``deadline`` (ISO 8601): the real triggerer enforces the
timeout given to ``defer()``, ``dags test`` runs triggers inline and does not.

What a poll found means is decided by :func:`smsdrop.dropbox.file_verdict` and
:func:`smsdrop.dropbox.report_verdict`, the functions the sensors' synchronous check asks
too: a trigger only gathers the sizes, asynchronously.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncssh
from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from smsdrop.airflow.async_hook import MTargetHookAsync
from smsdrop.airflow.exceptions import MTargetConfigError
from smsdrop.dropbox import (
    PROBE_ORDER,
    RemoteState,
    Verdict,
    file_verdict,
    report_verdict,
    state_file,
    stem_of,
)

__all__ = [
    "MTargetFileStatusTrigger",
    "MTargetReportTrigger",
    "MTargetTrigger",
    "event",
    "verdict_event",
]

#: Connection failures in a row a trigger rides out before it gives up with an error event.
MAX_CONNECTION_FAILURES = 5


def event(
    status: str,
    *,
    name: str,
    target: str,
    path: str,
    state: str,
    message: str,
    reason: str | None = None,
    size: int | None = None,
) -> dict[str, Any]:
    """The one event schema (module docstring)."""
    return {
        "status": status,
        "reason": reason,
        "name": name,
        "target": target,
        "path": path,
        "state": state,
        "bytes": size,
        "message": message,
    }


def verdict_event(
    verdict: Verdict, *, name: str, target: str, log: logging.Logger
) -> dict[str, Any] | None:
    """The event of a verdict whose wait is over, or None (logged: the wait goes on)."""
    if not verdict.over:
        log.info("%s", verdict.message)
        return None
    return event(**verdict._asdict(), name=name, target=target)


class MTargetTrigger(BaseTrigger):
    """
    Poll the provider until :meth:`check` has an answer; shared loop and error handling.

    :param name: the SEND file name the wait is about (``SEND-….csv``)
    :param mtarget_conn_id: the provider's SFTP connection
    :param folder: the remote folder polled (``Send`` or ``Report``, from the hook's extras)
    :param poll_interval: seconds between two polls
    :param deadline: ISO 8601 instant after which the trigger gives up (``timeout`` event)
    """

    target = "status"

    def __init__(
        self,
        *,
        name: str,
        mtarget_conn_id: str = "mtarget_default",
        folder: str = "Send",
        poll_interval: float = 60.0,
        deadline: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.mtarget_conn_id = mtarget_conn_id
        self.folder = folder
        self.poll_interval = float(poll_interval)
        self.deadline = deadline

    @property
    def stem(self) -> str:
        return stem_of(self.name)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # A stable classpath (the module, never __main__ or a test module's alias): the
        # triggerer re-imports the trigger from this string.
        return (
            f"smsdrop.airflow.triggers.{type(self).__name__}",
            {
                "name": self.name,
                "mtarget_conn_id": self.mtarget_conn_id,
                "folder": self.folder,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    def awaited_path(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    async def check(self, sftp: asyncssh.SFTPClient) -> dict[str, Any] | None:  # pragma: no cover
        """One poll: an event dict when the wait is over, None to poll again."""
        raise NotImplementedError

    def _event(self, status: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("path", self.awaited_path())
        return event(status, name=self.name, target=self.target, **fields)

    def _outcome(self, verdict: Verdict) -> dict[str, Any] | None:
        return verdict_event(verdict, name=self.name, target=self.target, log=self.log)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = MTargetHookAsync(sftp_conn_id=self.mtarget_conn_id)
        deadline = datetime.fromisoformat(self.deadline) if self.deadline else None
        failures = 0
        while True:
            outcome: dict[str, Any] | None
            try:
                async with hook.get_managed_conn() as sftp:
                    outcome = await self.check(sftp)
                failures = 0
            except MTargetConfigError as error:  # host key check switched off: never polled
                outcome = self._event(
                    "error", reason="host_key", state="unknown", message=str(error)
                )
            except asyncssh.HostKeyNotVerifiable:
                where, presented = await self._presented_key()
                outcome = self._event(
                    "error",
                    reason="host_key",
                    state="unknown",
                    message=f"host key of {where} is not the one pinned in connection "
                    f"{self.mtarget_conn_id!r} (host_key extra): the server presents "
                    f"{presented}. Refusing to connect.",
                )
            except asyncssh.PermissionDenied as error:
                outcome = self._event(
                    "error",
                    reason="auth",
                    state="unknown",
                    message=f"the server of connection {self.mtarget_conn_id!r} refused the "
                    f"login: {error.reason}. Not retried.",
                )
            except (OSError, asyncssh.Error, TimeoutError) as error:
                failures += 1
                self.log.warning(
                    "Polling for %s failed (%d in a row): %s: %s",
                    self.awaited_path(),
                    failures,
                    type(error).__name__,
                    error,
                )
                outcome = None
                if failures >= MAX_CONNECTION_FAILURES:
                    outcome = self._event(
                        "error",
                        reason="connection",
                        state="unknown",
                        message=f"{failures} polls in a row failed, the last with "
                        f"{type(error).__name__}: {error}",
                    )
            if outcome is not None:
                yield TriggerEvent(outcome)
                return
            if deadline is not None and datetime.now(UTC) >= deadline:
                yield TriggerEvent(
                    self._event(
                        "error",
                        reason="timeout",
                        state="waiting",
                        message=f"{self.awaited_path()} did not appear before {self.deadline}",
                    )
                )
                return
            await asyncio.sleep(self.poll_interval * (2 ** min(failures, 4) if failures else 1))

    async def _presented_key(self) -> tuple[str, str]:
        """Where the server is and its host key's fingerprint, for the error message only."""
        conn = await BaseHook.aget_connection(self.mtarget_conn_id)
        host, port = conn.host or "?", int(conn.port or 22)
        try:
            key = await asyncio.wait_for(asyncssh.get_server_host_key(host, port), 30)
        except (OSError, asyncssh.Error, TimeoutError):
            key = None
        shown = f"{key.get_algorithm()} {key.get_fingerprint()}" if key else "an unreadable key"
        return f"{host}:{port}", shown


async def _size(sftp: asyncssh.SFTPClient, path: str) -> int | None:
    try:
        attrs = await sftp.stat(path)
    except asyncssh.SFTPNoSuchFile:
        return None
    return int(attrs.size or 0)


class MTargetFileStatusTrigger(MTargetTrigger):
    """Fires when the SEND file is ``.done`` (success) or ``.reject``/gone (error), or is
    still ``.csv``/``.lock`` ``lock_deadline_minutes`` after ``since`` (error, ``stuck``).

    :param since: ISO 8601 instant the wait began (the sensor's start, after the upload)
    :param lock_deadline_minutes: how long a handed-over file may stay unprocessed; None:
        no deadline
    """

    target = "status"

    def __init__(
        self,
        *,
        since: str | None = None,
        lock_deadline_minutes: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.since = since
        self.lock_deadline_minutes = lock_deadline_minutes

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath, kwargs = super().serialize()
        return classpath, {
            **kwargs,
            "since": self.since,
            "lock_deadline_minutes": self.lock_deadline_minutes,
        }

    def awaited_path(self) -> str:
        return posixpath.join(self.folder, state_file(self.stem, RemoteState.DONE))

    async def check(self, sftp: asyncssh.SFTPClient) -> dict[str, Any] | None:
        found: dict[str, int] = {}
        for state in PROBE_ORDER:  # the order files move in: see dropbox.PROBE_ORDER
            size = await _size(sftp, posixpath.join(self.folder, state_file(self.stem, state)))
            if size is not None:
                found[state.value] = size
        since = datetime.fromisoformat(self.since) if self.since else None
        deadline = self.lock_deadline_minutes
        return self._outcome(
            file_verdict(
                self.name,
                self.folder,
                found,
                waited=None if since is None else datetime.now(UTC) - since,
                deadline=None if deadline is None else timedelta(minutes=float(deadline)),
            )
        )


class MTargetReportTrigger(MTargetTrigger):
    """Fires when a report (default the ACK of the SEND name) exists in ``Report/``.

    :param report_name: the report file awaited (``ACK-….csv``)
    :param stable_for: seconds the report's size must stay the same before it counts: the
        sandbox writes reports whole, a real server may be caught half-way
    """

    target = "report"

    def __init__(self, *, report_name: str, stable_for: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report_name = report_name
        self.stable_for = float(stable_for)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath, kwargs = super().serialize()
        return classpath, {**kwargs, "report_name": self.report_name, "stable_for": self.stable_for}

    def awaited_path(self) -> str:
        return posixpath.join(self.folder, self.report_name)

    async def check(self, sftp: asyncssh.SFTPClient) -> dict[str, Any] | None:
        path = self.awaited_path()
        size = again = await _size(sftp, path)
        if size is not None and self.stable_for > 0:
            await asyncio.sleep(self.stable_for)
            again = await _size(sftp, path)
        return self._outcome(report_verdict(path, size, again))
