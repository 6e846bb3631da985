"""What the ``sms_reports`` DAG does: load the growing STOP and SMSMO reports incrementally.

Each ``STOP-*.csv`` and ``SMSMO-*.csv`` in ``Report/`` is read from the byte offset saved
in the warehouse (``sms_report_offsets``); its complete records are parsed (a last line the
provider is still writing is left for the next run) and loaded — a STOP report into the
suppression list (source ``stop_report``), an SMSMO report into ``sms_replies`` (a reply
whose first word is an opt-out keyword is an opt-out too, source ``mo_reply``) — and the new
offset is saved **in the same transaction**: a run that fails half-way loads nothing twice
and loses nothing. Loads are idempotent besides, so a re-read changes no row.

Logs name files, offsets and counts; never a phone number or a message text.
"""

from __future__ import annotations

import logging
from typing import Any

from smsdrop.naming import FileKind

log = logging.getLogger(__name__)

#: The report kinds this task reads (ACKs are the campaign DAG's).
KINDS = (FileKind.STOP, FileKind.SMSMO)


def load_reply_reports(
    mtarget_conn_id: str = "mtarget_default",
    warehouse_conn_id: str = "smsdrop_warehouse",
) -> dict[str, int]:
    """Load what is new in every STOP and SMSMO report; returns counts only (for XCom):
    ``files`` (reports listed), ``files_read`` (with new complete records), ``bytes``,
    ``rows`` (records parsed), ``replies`` (new in ``sms_replies``), ``optouts`` (opt-outs
    added or moved earlier)."""
    from smsdrop.airflow.hooks import MTargetHook
    from smsdrop.airflow.warehouse import warehouse_from_connection
    from smsdrop.naming import parse_name
    from smsdrop.reports import parse_replies_from

    hook = MTargetHook(mtarget_conn_id)
    names = [n for n in hook.list_reports() if parse_name(n).kind in KINDS]
    counts = dict.fromkeys(("files", "files_read", "bytes", "rows", "replies", "optouts"), 0)
    counts["files"] = len(names)
    with warehouse_from_connection(warehouse_conn_id) as warehouse:
        warehouse.migrate()
        for name in names:
            offset = warehouse.get_offset(name)
            data = hook.read_from(hook.report_path(name), offset)
            chunk = parse_replies_from(data, name, offset)
            if chunk.next_offset == offset:
                log.info("%s: nothing new from byte %d (%d bytes pending)", name, offset, len(data))
                continue
            with warehouse.transaction():
                if parse_name(name).kind is FileKind.STOP:
                    result = warehouse.upsert_optouts(chunk.frame, "stop_report", name)
                    replies = 0
                else:
                    result = warehouse.load_replies(chunk.frame, name)
                    replies = result.new
                warehouse.set_offset(name, chunk.next_offset)
            _add(counts, files_read=1, bytes=chunk.next_offset - offset, rows=result.rows)
            _add(counts, replies=replies, optouts=result.optouts)
            log.info(
                "%s: bytes %d..%d, %d records, %d new replies, %d opt-outs added",
                name,
                offset,
                chunk.next_offset,
                result.rows,
                replies,
                result.optouts,
            )
    log.info("reply reports loaded: %s", counts)
    return counts


def _add(counts: dict[str, int], **more: Any) -> None:
    for key, value in more.items():
        counts[key] += int(value)
