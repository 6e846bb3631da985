"""The send history and frequency caps, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from smsdrop.errors import InputError
from smsdrop.frequency import FrequencyCap, deployment_cap
from smsdrop.warehouse import Warehouse

SLOT = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
A, B, C = 33612345678, 33612345679, 33700000001


def _file(wh: Warehouse, name: str, campaign: str, at: datetime, numbers, state="planned"):
    wh.record_file_state(name, "planned", campaign_id=campaign, row_count=len(numbers))
    if state != "planned":
        wh.record_file_state(name, state)
    return wh.record_send_history(name, campaign, at, np.array(numbers, dtype=np.int64))


def test_history_is_bulk_and_idempotent(warehouse: Warehouse) -> None:
    numbers = np.arange(33600000000, 33600050000, dtype=np.int64)
    assert _file(warehouse, "SEND-SVC01-20261201-0900-C1.csv", "C1", SLOT, numbers) == 50_000
    again = warehouse.record_send_history("SEND-SVC01-20261201-0900-C1.csv", "C1", SLOT, numbers)
    assert again == 0


def test_numbers_at_the_cap_near_the_slot(warehouse: Warehouse) -> None:
    day = timedelta(days=1)
    _file(warehouse, "SEND-SVC01-20261202-0900-C1.csv", "C1", SLOT - 6 * day, [A, B, C])
    _file(warehouse, "SEND-SVC01-20261205-0900-C2.csv", "C2", SLOT - 3 * day, [A, B])
    _file(warehouse, "SEND-SVC01-20261210-0900-C3.csv", "C3", SLOT + 2 * day, [A])  # planned
    _file(warehouse, "SEND-SVC01-20261130-0900-C4.csv", "C4", SLOT - 8 * day, [C, B])  # too old
    _file(warehouse, "SEND-SVC01-20261207-0900-C5.csv", "C5", SLOT - day, [C], state="reject")
    cap = FrequencyCap(2, 7)
    assert warehouse.capped_numbers(cap, SLOT, "NEW").tolist() == [A, B]
    assert warehouse.capped_numbers(FrequencyCap(3, 7), SLOT, "NEW").tolist() == [A]
    assert warehouse.capped_numbers(FrequencyCap(2, 10), SLOT, "NEW").tolist() == [A, B, C]
    # A re-run of C2 does not count C2's own file.
    assert warehouse.capped_numbers(cap, SLOT, "C2").tolist() == [A]
    assert warehouse.capped_numbers(FrequencyCap(1, 1), SLOT, "NEW").size == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3/7", FrequencyCap(3, 7)), (" 1 / 30 ", FrequencyCap(1, 30)), ("off", None), ("", None)],
)
def test_cap_spelling(text: str, expected: FrequencyCap | None) -> None:
    assert FrequencyCap.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("3", "must be MESSAGES/DAYS"),
        ("0/7", "field frequency_cap.max_messages: must be a whole number 1..1000"),
        ("3/400", "field frequency_cap.days: must be a whole number 1..366"),
        ("3/7; DROP", "must be MESSAGES/DAYS"),
    ],
)
def test_bad_caps_name_the_field(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment.replace("(", r"\(")):
        FrequencyCap.parse(text)


def test_deployment_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMSDROP_FREQUENCY_CAP", raising=False)
    assert deployment_cap() is None
    monkeypatch.setenv("SMSDROP_FREQUENCY_CAP", "2/14")
    assert deployment_cap() == FrequencyCap(2, 14)
    monkeypatch.setenv("SMSDROP_FREQUENCY_CAP", "often")
    with pytest.raises(InputError, match="field SMSDROP_FREQUENCY_CAP"):
        deployment_cap()
