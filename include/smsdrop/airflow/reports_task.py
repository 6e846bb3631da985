"""Load the provider's growing STOP and SMSMO reports: the ``sms_reports`` DAG's task, and
the opt-out refresh a campaign runs before it uploads.

:func:`refresh_optouts` is the one code path. With one SFTP session it lists ``Report/``
and takes each ``STOP-*.csv`` then each ``SMSMO-*.csv`` (STOP first: they are what the
suppression list is made of) **on its own**: a file that fails is logged and the others go
on; the refresh raises :class:`RefreshFailed` at the end, naming the failed files. Each
file is read from the byte offset saved in the warehouse (``sms_report_offsets``); its
complete records are parsed (a last line the provider is still writing waits for the next
run); records that cannot be loaded are kept aside in ``sms_report_quarantine``
(:func:`smsdrop.reports.parse_replies_from` with ``quarantine=True``); a STOP report goes
into the suppression list (source ``stop_report``), an SMSMO report into ``sms_replies`` (a
reply whose first word is an opt-out keyword is an opt-out too, source ``mo_reply``); rows,
quarantined records and the new offset are saved **in one transaction** per file. A refresh
in which every file went through is recorded in ``sms_optout_loads``
(:meth:`~smsdrop.warehouse.Warehouse.last_optout_load`).

Logs name files, offsets, counts and reasons; never a phone number or a message text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from smsdrop.dropbox import GROWING_REPORTS, FileKind

if TYPE_CHECKING:
    from smsdrop.airflow.hooks import MTargetHook
    from smsdrop.warehouse import Warehouse

log = logging.getLogger(__name__)

#: The report kinds read, in this order: the growing ones (ACKs are the campaign DAG's).
KINDS: Final = GROWING_REPORTS
#: A report of a campaign whose slot (the name's DATE-HOUR) is older than this is removed
#: from ``Report/`` once loaded: the provider keeps files a month (the spec: it "reserves the
#: rights" to delete files older than that; the sandbox: 30 days), and asks clients to
#: delete what they processed.
REPORT_HORIZON: Final = timedelta(days=30)
#: ... and only when the file has not changed for this long (the provider may be appending).
REPORT_QUIET: Final = timedelta(hours=1)
#: Digit runs in an error text that could be (part of) a phone number.
_DIGITS: Final = re.compile(r"\+?[0-9][0-9 .\-]{4,}[0-9]")


@dataclass
class RefreshResult:
    """What one refresh did (counts only: safe for XCom and logs).

    ``files``: STOP/SMSMO reports listed; ``files_read``: with new complete records;
    ``bytes``: bytes consumed (offsets moved by); ``rows``: records loaded; ``quarantined``:
    records set aside; ``cleaned``: NUL and invalid UTF-8 bytes replaced; ``replies``: rows
    new in ``sms_replies``; ``optouts``: opt-outs added or moved earlier. ``finished_at``
    (UTC) is set when every file went through.
    """

    files: int = 0
    files_read: int = 0
    bytes: int = 0
    rows: int = 0
    quarantined: int = 0
    cleaned: int = 0
    replies: int = 0
    optouts: int = 0
    finished_at: datetime | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, int]:
        """The counts (``finished_at`` left out), e.g. for XCom."""
        counts = asdict(self)
        counts.pop("finished_at")
        return counts


class RefreshFailed(RuntimeError):
    """Some reports could not be read or loaded; the others were. ``failed`` maps each
    file to its (masked) error, ``result`` holds what was loaded."""

    def __init__(self, failed: dict[str, str], result: RefreshResult) -> None:
        self.failed, self.result = failed, result
        listed = "; ".join(f"{name}: {error}" for name, error in failed.items())
        super().__init__(f"{len(failed)} of {result.files} report file(s) failed: {listed}")


def _masked_error(error: BaseException) -> str:
    """``Type: message`` with digit runs masked (a database error can quote a row)."""
    text = _DIGITS.sub(lambda m: "*" * (len(m.group()) - 2) + m.group()[-2:], str(error))
    return f"{type(error).__name__}: {text}"[:500]


def _order(names: list[str]) -> list[str]:
    """STOP reports first, then SMSMO; by name within a kind."""
    from smsdrop.naming import parse_name

    kinds = [(name, parse_name(name).kind) for name in names]
    return [n for kind in KINDS for n, k in sorted(kinds) if k is kind]


def refresh_optouts(hook: MTargetHook, warehouse: Warehouse) -> RefreshResult:
    """Load what is new in every STOP and SMSMO report, with one SFTP session.

    ``warehouse`` must be migrated. Each file is loaded in a transaction of its own (rows,
    quarantined records, offset). Raises :class:`RefreshFailed` when a file failed (the
    others are loaded); otherwise records the refresh (``sms_optout_loads``) and returns its
    counts. Listing ``Report/`` failing (the provider unreachable) raises that error.
    """
    started = datetime.now(UTC)
    result = RefreshResult()
    failed: dict[str, str] = {}
    with hook.get_managed_conn():
        names = _order(hook.list_reports())
        result.files = len(names)
        for name in names:
            try:
                _load_file(hook, warehouse, name, result)
            except Exception as error:  # noqa: BLE001 - one file must not stop the others
                failed[name] = _masked_error(error)
                log.error("%s: not loaded, retried next run: %s", name, failed[name])
    if failed:
        raise RefreshFailed(failed, result)
    result.finished_at = datetime.now(UTC)
    warehouse.record_optout_load(started, result.finished_at, result.as_dict())
    log.info("reply reports loaded: %s", result.as_dict())
    return result


def _load_file(hook: MTargetHook, warehouse: Warehouse, name: str, result: RefreshResult) -> None:
    from smsdrop.naming import parse_name
    from smsdrop.reports import parse_replies_from

    is_stop = parse_name(name).kind is FileKind.STOP
    offset = warehouse.get_offset(name)
    data = hook.read_from(hook.report_path(name), offset)
    chunk = parse_replies_from(data, name, offset, quarantine=True, require_msisdn=is_stop)
    if chunk.next_offset == offset:
        log.info("%s: nothing new from byte %d (%d bytes pending)", name, offset, len(data))
        return
    with warehouse.transaction():
        if is_stop:
            loaded = warehouse.upsert_optouts(chunk.table, "stop_report", name)
            replies = 0
        else:
            loaded = warehouse.load_replies(chunk.table, name)
            replies = loaded.new
        warehouse.quarantine_records(name, chunk.quarantined)
        warehouse.set_offset(name, chunk.next_offset)
    result.files_read += 1
    result.bytes += chunk.next_offset - offset
    result.rows += loaded.rows
    result.quarantined += len(chunk.quarantined)
    result.cleaned += chunk.cleaned
    result.replies += replies
    result.optouts += loaded.optouts
    log.info(
        "%s: bytes %d..%d, %d records loaded, %d set aside, %d new replies, %d opt-outs added",
        name,
        offset,
        chunk.next_offset,
        loaded.rows,
        len(chunk.quarantined),
        replies,
        loaded.optouts,
    )
    for q in chunk.quarantined:  # reasons are masked by the parser; the raw text is not logged
        log.warning("set aside: %s", q.describe(name))
    if chunk.cleaned:
        log.warning("%s: %d NUL or invalid UTF-8 byte(s) replaced by '?'", name, chunk.cleaned)


def remove_old_reports(
    hook: MTargetHook,
    warehouse: Warehouse,
    *,
    now: datetime | None = None,
    horizon: timedelta = REPORT_HORIZON,
    quiet: timedelta = REPORT_QUIET,
) -> list[str]:
    """Remove the reports (ACK, STOP, SMSMO) of campaigns older than ``horizon`` that are
    loaded: a STOP/SMSMO report whose saved offset is its size, an ACK whose lines are in
    ``sms_deliveries``; unchanged for ``quiet`` at least. Returns the names removed.

    A growing report's offset is set back to 0 *before* the file is removed: if the
    provider writes it again (a late reply), the new file is read from its start, and a
    removal that fails only costs an idempotent re-read.
    """
    from smsdrop.errors import InvalidName
    from smsdrop.naming import parse_name

    now = now or datetime.now(UTC)
    removed: list[str] = []
    with hook.get_managed_conn() as sftp:
        for name in hook.list_reports():
            try:
                parsed = parse_name(name)
            except InvalidName:
                continue
            if parsed.at > now - horizon:
                continue
            try:
                attrs = sftp.stat(hook.report_path(name))
            except FileNotFoundError:
                continue
            size, changed = int(attrs.st_size or 0), float(attrs.st_mtime or 0)
            if now.timestamp() - changed < quiet.total_seconds():
                log.info("%s: changed less than %s ago, kept", name, quiet)
                continue
            if parsed.kind is FileKind.ACK:
                found = warehouse.query_frame(
                    "SELECT count(*) AS n FROM sms_deliveries WHERE file = %s", (name,)
                )
                loaded = int(found["n"][0]) > 0
            else:
                loaded = warehouse.get_offset(name) == size
            if not loaded:
                log.warning("%s: older than %s but not loaded yet, kept", name, horizon)
                continue
            if parsed.kind is not FileKind.ACK:
                warehouse.set_offset(name, 0)
            try:
                hook.delete_report(name)
            except FileNotFoundError:
                log.info("%s was gone already", name)
                continue
            removed.append(name)
            log.info("%s: campaign older than %s, loaded: removed", name, horizon)
    return removed


def load_reply_reports(
    mtarget_conn_id: str = "mtarget_default",
    warehouse_conn_id: str = "smsdrop_warehouse",
) -> dict[str, int]:
    """The ``sms_reports`` task: migrate the warehouse, :func:`refresh_optouts`, return the
    counts (:meth:`RefreshResult.as_dict`) for XCom, plus ``failed``: the files that could
    not be loaded (named in the log). A failed file does not fail this task — the others'
    opt-outs must still be announced — the DAG's ``check_failures`` fails the run after.
    The provider unreachable (``Report/`` cannot be listed) fails it: Airflow retries."""
    from smsdrop.airflow.hooks import MTargetHook
    from smsdrop.airflow.warehouse import warehouse_from_connection

    hook = MTargetHook(mtarget_conn_id)
    with warehouse_from_connection(warehouse_conn_id) as warehouse:
        warehouse.migrate()
        try:
            result, failed = refresh_optouts(hook, warehouse), {}
        except RefreshFailed as error:
            result, failed = error.result, error.failed
    return {**result.as_dict(), "failed": len(failed)}
