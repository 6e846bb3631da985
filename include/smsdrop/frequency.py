"""Frequency caps: at most N messages per number in D days, across campaigns.

A marketing programme sends several campaigns a week; without a cap the same person gets
all of them. A cap is a campaign parameter with a deployment default
(``SMSDROP_FREQUENCY_CAP``, e.g. ``3/7``: 3 messages per 7 days); a transactional campaign
can be exempted. Numbers over the cap are rejected ``FREQUENCY_CAPPED``.

What counts (docs/PROTOCOL.md, "Frequency caps"): the messages of *other* campaigns whose
slot lies less than D days from this campaign's slot, before or after it (a campaign
planned for tomorrow counts today), in files not rejected by the provider. The history is
recorded when the file names are planned (``Warehouse.record_send_history``), and the
numbers at the cap come back as a sorted int64 array, anti-joined like the opt-outs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from smsdrop.errors import InputError

__all__ = ["ENV", "FrequencyCap", "deployment_cap"]

ENV: Final = "SMSDROP_FREQUENCY_CAP"
MAX_MESSAGES: Final = 1000
MAX_DAYS: Final = 366
_SPELLING: Final = re.compile(r"\s*([0-9]{1,4})\s*/\s*([0-9]{1,3})\s*")


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``max_messages`` per number in any ``days``-day span."""

    max_messages: int
    days: int

    def __post_init__(self) -> None:
        for name, value, high in (
            ("max_messages", self.max_messages, MAX_MESSAGES),
            ("days", self.days, MAX_DAYS),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise InputError(
                    f"must be a whole number 1..{high}, got {value!r}",
                    field=f"frequency_cap.{name}",
                )

    @classmethod
    def parse(cls, text: str, field: str = "frequency_cap") -> FrequencyCap | None:
        """``"3/7"`` (3 messages per 7 days); ``""``/``"off"``: no cap."""
        if text.strip().lower() in ("", "off", "none"):
            return None
        match = _SPELLING.fullmatch(text)
        if not match:
            raise InputError(
                f"must be MESSAGES/DAYS such as 3/7, or off; got {text!r}", field=field
            )
        return cls(int(match[1]), int(match[2]))

    def span(self, slot: datetime) -> tuple[datetime, datetime]:
        """The slots that count against a send at ``slot``: ``(slot - D, slot + D)``."""
        return slot - timedelta(days=self.days), slot + timedelta(days=self.days)

    def __str__(self) -> str:
        return f"{self.max_messages}/{self.days}"


def deployment_cap() -> FrequencyCap | None:
    """The deployment's default cap (``SMSDROP_FREQUENCY_CAP``), None when unset."""
    return FrequencyCap.parse(os.environ.get(ENV, ""), field=ENV)
