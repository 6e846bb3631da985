"""The send history: which numbers each SEND file holds, for frequency caps.

A mixin of :class:`~smsdrop.warehouse.base.Warehouse` (it uses the engine's bulk insert
and queries), kept apart because it is one feature with its own table (migration 007).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePath
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from smsdrop import dropbox
from smsdrop.frequency import FrequencyCap

if TYPE_CHECKING:
    from smsdrop.warehouse.base import Warehouse

__all__ = ["SendHistory"]


class SendHistory:
    """``record_send_history`` at plan time, ``capped_numbers`` at preparation time."""

    def record_send_history(
        self: Warehouse,
        send_file: str | PurePath,
        campaign_id: str,
        send_at: datetime,
        numbers: np.ndarray,
    ) -> int:
        """Record the numbers (E.164 as int64) of one SEND file; returns the rows added.

        Idempotent: a retried task records the same file again and adds nothing.
        """
        name = PurePath(send_file).name
        count = len(numbers)
        data = pa.table(
            {
                "send_file": pa.repeat(pa.scalar(name, pa.string()), count),
                "campaign_id": pa.repeat(pa.scalar(campaign_id, pa.string()), count),
                "msisdn": pa.array(np.asarray(numbers, dtype=np.int64)),
                "send_at": pa.repeat(pa.scalar(send_at, pa.timestamp("us", tz="UTC")), count),
            }
        )
        with self.transaction():
            return self._insert_select(
                "sms_send_history", data, "ON CONFLICT (send_file, msisdn) DO NOTHING"
            )

    def capped_numbers(
        self: Warehouse, cap: FrequencyCap, slot: datetime, campaign_id: str
    ) -> np.ndarray:
        """Numbers that already have ``cap.max_messages`` messages near ``slot``, sorted.

        Other campaigns only (a re-run of this one must not cap itself), files the provider
        did not reject.
        """
        since, until = cap.span(slot)
        _, rows = self._query(
            "SELECT h.msisdn FROM sms_send_history AS h"
            " JOIN sms_campaign_files AS f ON f.name = h.send_file"
            " WHERE h.send_at > %s AND h.send_at < %s AND h.campaign_id <> %s"
            " AND f.state <> %s"
            " GROUP BY h.msisdn HAVING COUNT(*) >= %s ORDER BY h.msisdn",
            (since, until, campaign_id, dropbox.FileState.REJECT.value, cap.max_messages),
        )
        return np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
