"""The provider's SFTP drop-box as an Airflow hook: :class:`MTargetHook`.

The session under it is :class:`~smsdrop.airflow.sftp_session.PinnedSFTPHook` (pinned host
key, refusals explained and never retried, managed connections, fast transfers); the SSH
policy it shares with the triggers' asyncssh hook is :mod:`smsdrop.airflow.ssh_rules`, that
hook :mod:`smsdrop.airflow.async_hook`, and the drop-box's states and probe order
:mod:`smsdrop.dropbox`. What this hook adds is the protocol: :meth:`~MTargetHook.remote_state`
of a SEND name (absent, tmp, csv, lock, done, reject), :meth:`~MTargetHook.upload_atomic`
(``name.tmp`` → size and, where the server offers it, checksum → POSIX rename to
``name.csv``), reports listed, downloaded, deleted, and read incrementally from a byte offset
(:meth:`~MTargetHook.read_from`) while the provider appends.

Connection extras read here, besides the session's: ``send_dir`` (default ``Send``),
``report_dir`` (``Report``).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as stat_module
import time
from contextlib import suppress
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from smsdrop.airflow.exceptions import MTargetConfigError, MTargetTransferError
from smsdrop.airflow.sftp_session import PinnedSFTPHook
from smsdrop.dropbox import (
    PROBE_ORDER,
    REPORT_KINDS,
    FileKind,
    RemoteState,
    latest_state,
    state_file,
    stem_of,
)
from smsdrop.errors import InvalidName
from smsdrop.naming import ProviderName, parse_name

__all__ = ["MTargetHook", "SendState", "send_name"]


@dataclass(frozen=True)
class SendState:
    """What :meth:`MTargetHook.remote_state` found for one SEND name.

    ``state`` is the most advanced file present; ``sizes`` has every file found by
    extension (a stale ``tmp`` can sit next to a ``done`` if someone uploaded by hand).
    """

    stem: str
    state: RemoteState
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def stale_tmp(self) -> bool:
        return RemoteState.TMP.value in self.sizes

    @property
    def size(self) -> int | None:
        """Bytes of the most advanced file (None when absent)."""
        return self.sizes.get(self.state.value)


def send_name(name: str) -> ProviderName:
    """``name`` as a SEND file name ending in ``.csv`` (the name the provider processes).

    Raises :class:`MTargetConfigError` otherwise: a name off the pattern is ignored or
    rejected by the provider, so uploading it would only hide a campaign nobody sends.
    """
    try:
        parsed = parse_name(name)
    except InvalidName as error:
        raise MTargetConfigError(f"not a SEND file name: {error}") from None
    if parsed.kind is not FileKind.SEND or parsed.ext != RemoteState.CSV:
        raise MTargetConfigError(
            f"{name!r} is not a SEND-….csv name (kind {parsed.kind}, extension {parsed.ext})"
        )
    return parsed


class MTargetHook(PinnedSFTPHook):
    """
    Talk to the provider's SFTP drop-box (``Send/`` and ``Report/``).

    Connection type ``sftp``; the extras are listed in this module's docstring and in
    :mod:`smsdrop.airflow.sftp_session`'s. The ``host_key`` extra is required.

    :param mtarget_conn_id: the connection (default ``mtarget_default``)
    :param send_dir: overrides the ``send_dir`` extra (default ``Send``)
    :param report_dir: overrides the ``report_dir`` extra (default ``Report``)
    """

    conn_name_attr = "mtarget_conn_id"
    default_conn_name = "mtarget_default"
    conn_type = "sftp"
    hook_name = "MTarget SFTP"

    def __init__(
        self,
        mtarget_conn_id: str = default_conn_name,
        *,
        send_dir: str | None = None,
        report_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mtarget_conn_id, **kwargs)
        self.send_dir = (send_dir or self.extras.get("send_dir") or "Send").rstrip("/")
        self.report_dir = (report_dir or self.extras.get("report_dir") or "Report").rstrip("/")

    # --- paths -----------------------------------------------------------------------------

    def send_path(self, file_name: str) -> str:
        return posixpath.join(self.send_dir, file_name)

    def report_path(self, file_name: str) -> str:
        return posixpath.join(self.report_dir, file_name)

    # --- SEND files ------------------------------------------------------------------------

    def remote_state(self, name: str) -> SendState:
        """Where the SEND file ``name`` (any extension, or a stem) is in ``Send/``.

        Each state's file is stat'ed in the order files move (:data:`PROBE_ORDER`), so a
        file the provider renames meanwhile is still seen once; the answer is the most
        advanced file present.
        """
        stem = stem_of(name)
        found: dict[str, int] = {}
        with self.get_managed_conn() as sftp:
            for state in PROBE_ORDER:
                try:
                    attrs = sftp.stat(self.send_path(state_file(stem, state)))
                except FileNotFoundError:
                    continue
                except OSError as error:
                    if error.errno == errno.ENOENT:
                        continue
                    raise
                found[state.value] = int(attrs.st_size or 0)
        return SendState(stem, latest_state(found), found)

    def delete_send_file(self, file_name: str) -> None:
        """Remove ``Send/file_name`` (a stale ``.tmp``; or, once processed, our copy)."""
        with self.get_managed_conn() as sftp:
            sftp.remove(self.send_path(file_name))

    def upload_atomic(self, local_path: str | os.PathLike[str], remote_name: str) -> dict:
        """Upload ``local_path`` as ``Send/<stem>.tmp``, verify it, rename it ``<stem>.csv``.

        The primitive under :class:`~smsdrop.airflow.operators.MTargetUploadOperator`,
        which decides *whether* to call it (remote state first). Verification: the remote
        size must equal the local size, and when the server offers the ``check-file``
        extension the SHA-256 must match too. The rename is POSIX (``posix-rename@openssh.com``,
        atomic), plain rename where the server lacks it. The ``.csv`` is not stat'ed
        afterwards: the provider renames it at once, so its absence proves nothing.

        Returns ``{"bytes": …, "checksum": "sha256"|None, "seconds": …}``.
        """
        parsed = send_name(remote_name)
        local = Path(local_path)
        size = local.stat().st_size
        tmp = self.send_path(parsed.with_ext(RemoteState.TMP))
        final = self.send_path(parsed.with_ext(RemoteState.CSV))
        started = time.perf_counter()
        with self.get_managed_conn() as sftp:
            with open(local, "rb") as source:
                sent = self._put(sftp, source, tmp, size)
            remote_size = sftp.stat(tmp).st_size
            if remote_size != size:
                with suppress(OSError):
                    sftp.remove(tmp)
                raise MTargetTransferError(
                    f"{tmp} is {remote_size} bytes after the upload, {local.name} is {size}: "
                    "removed; the retry uploads it again"
                )
            checksum = self._verify_checksum(sftp, tmp, local)
            self._rename(sftp, tmp, final)
        seconds = time.perf_counter() - started
        self.log.info(
            "Uploaded %s (%d bytes in %.2f s, %.0f MB/s) and renamed it %s",
            tmp,
            sent,
            seconds,
            sent / seconds / 1e6 if seconds > 0 else 0.0,
            final,
        )
        return {"bytes": size, "checksum": checksum, "seconds": round(seconds, 3)}

    # --- reports ---------------------------------------------------------------------------

    def list_reports(self, kind: FileKind | str | None = None) -> list[str]:
        """Report names in ``Report/`` (ACK, STOP, SMSMO; ``kind`` filters), sorted.

        Anything that does not parse as a report name is left out.
        """
        wanted = FileKind(kind) if kind is not None else None
        with self.get_managed_conn() as sftp:
            entries = sftp.listdir_attr(self.report_dir)
        names = []
        for entry in entries:
            if not stat_module.S_ISREG(entry.st_mode or 0):
                continue
            try:
                parsed = parse_name(entry.filename)
            except InvalidName:
                continue
            if parsed.kind not in REPORT_KINDS or (
                wanted is not None and parsed.kind is not wanted
            ):
                continue
            names.append(entry.filename)
        return sorted(names)

    def report_size(self, file_name: str) -> int | None:
        """Bytes of ``Report/file_name``, or None when it is not there (yet)."""
        with self.get_managed_conn() as sftp:
            try:
                return int(sftp.stat(self.report_path(file_name)).st_size or 0)
            except FileNotFoundError:
                return None

    def download_report(self, file_name: str, local_path: str | os.PathLike[str]) -> int:
        """Download ``Report/file_name`` to ``local_path`` (complete or not at all).

        Written beside the target under a ``.partial`` name and renamed into place, so a
        reader never sees half a report. Returns the number of bytes.
        """
        target = Path(local_path)
        partial = target.with_name(target.name + ".partial")
        remote = self.report_path(file_name)
        with self.get_managed_conn() as sftp, open(partial, "wb") as out:
            try:
                size = self._get(sftp, remote, out, 0)
            except BaseException:
                out.close()
                partial.unlink(missing_ok=True)
                raise
        os.replace(partial, target)
        return size

    def read_from(self, remote_path: str, offset: int = 0) -> bytes:
        """The bytes of ``remote_path`` from ``offset`` to its size now.

        For STOP and SMSMO reports, which the provider appends to in real time: read what is
        new since the last offset and feed it to :func:`smsdrop.reports.parse_replies_from`,
        which keeps an incomplete last record for the next read. Reading stops at the size
        the server reported when the file was opened, so a concurrent append is read next
        time, not half now. A file shorter than ``offset`` raises: it was replaced.
        """
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        buffer = BytesIO()
        with self.get_managed_conn() as sftp:
            self._get(sftp, remote_path, buffer, offset)
        return buffer.getvalue()

    def delete_report(self, file_name: str) -> None:
        """Remove ``Report/file_name`` (the provider asks clients to delete what they took)."""
        with self.get_managed_conn() as sftp:
            sftp.remove(self.report_path(file_name))
