"""The sandbox's pieces on their own: clock, schedule rules, draws, ACK bytes, STOP words."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdrop.naming import parse_name
from smsdrop.reports import parse_ack, write_ack_line
from smsdrop.sandbox import Outcome, SandboxConfig, SimClock
from smsdrop.sandbox.config import STATUSES, STOP_SPELLINGS
from smsdrop.sandbox.engine import ack_bytes
from smsdrop.sandbox.events import EVENTS_FILE, EventLog, events
from smsdrop.sandbox.replies import is_stop
from smsdrop.sandbox.sending import (
    CODE,
    OUTCOMES,
    Plan,
    ack_operator_ids,
    build_plan,
    draw,
    schedule,
)
from smsdrop.sandbox.server import peer_allowed
from tests.sandbox.conftest import PARIS, mobiles, records

LS = pa.large_string()

# --- clock ---------------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_clock_runs_at_its_speed_and_jumps_forward_only() -> None:
    real = FakeMonotonic()
    start = datetime(2026, 12, 6, 23, 0, tzinfo=PARIS)  # a Sunday night
    clock = SimClock(start, speed=3600, monotonic=real)
    assert clock.now() == start
    real.now += 24  # 24 real seconds = 1 simulated day
    assert clock.now() == start + timedelta(days=1)
    assert clock.real_seconds_until(start + timedelta(days=2)) == pytest.approx(24)
    woken = []
    clock.on_advance(lambda: woken.append(True))
    clock.advance(timedelta(hours=1))
    assert clock.now() == start + timedelta(days=1, hours=1) and woken == [True]
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    assert clock.advance_to(start) == clock.now()  # the past changes nothing
    assert clock.real_seconds_until(start) == 0


def test_clock_refuses_naive_start_and_bad_speed() -> None:
    with pytest.raises(ValueError):
        SimClock(datetime(2026, 1, 1), 1)
    with pytest.raises(ValueError):
        SimClock(None, 0)


# --- schedule rules ------------------------------------------------------------------


def plan_for(name: str, numbers: list[str], tmp: Path, config: SandboxConfig) -> Plan:
    path = tmp / name
    path.write_bytes(records([(f"C{i}", n, "SHOP", "hello") for i, n in enumerate(numbers)]))
    return build_plan(path, name, parse_name(name), config)


ACCEPTED = datetime(2026, 12, 1, 9, 0, tzinfo=PARIS)  # Tuesday


@pytest.mark.parametrize(
    ("hhmm_date", "expected", "rejected"),
    [
        ("20261201-1000", datetime(2026, 12, 1, 10, 0, tzinfo=PARIS), False),  # allowed
        ("20261201-0700", ACCEPTED, False),  # past: now (09:00, allowed)
        ("20261202-0730", datetime(2026, 12, 2, 8, 0, tzinfo=PARIS), False),  # early: 08:00
        ("20261202-2200", datetime(2026, 12, 3, 8, 0, tzinfo=PARIS), False),  # 22:00 excluded
        ("20261202-2159", datetime(2026, 12, 2, 21, 59, tzinfo=PARIS), False),
        ("20261205-2300", datetime(2026, 12, 7, 8, 0, tzinfo=PARIS), False),  # Sat → Mon
        ("20261206-0900", datetime(2026, 12, 6, 9, 0, tzinfo=PARIS), True),  # Sunday
        ("20261225-0900", datetime(2026, 12, 25, 9, 0, tzinfo=PARIS), True),  # Noël
        ("20261224-2300", datetime(2026, 12, 26, 8, 0, tzinfo=PARIS), False),  # after Noël
        ("20270329-0900", datetime(2027, 3, 29, 9, 0, tzinfo=PARIS), True),  # Easter Monday
    ],
)
def test_french_marketing_window(tmp_path, hhmm_date: str, expected, rejected: bool) -> None:
    config = SandboxConfig(root=tmp_path)
    name = f"SEND-12345-{hhmm_date}-x.csv"
    plan = plan_for(name, ["+33612345678"], tmp_path, config)
    [batch] = schedule(plan, ACCEPTED.astimezone(UTC), config)
    assert batch.at == expected and batch.rejected is rejected


def test_window_applies_per_destination_country(tmp_path) -> None:
    config = SandboxConfig(root=tmp_path)
    numbers = ["+33612345678", "+447400123456", "+33612345679", "+4915112345678"]
    plan = plan_for("SEND-12345-20261206-1000-x.csv", numbers, tmp_path, config)
    batches = schedule(plan, ACCEPTED, config)
    by_rows = {tuple(b.rows.tolist()): b.rejected for b in batches}
    assert by_rows == {(0, 2): True, (1, 3): False}
    transactional = schedule(plan, ACCEPTED, config.replace(marketing=False))
    assert [b.rejected for b in transactional] == [False]
    narrow = config.replace(window_end=time(20))
    late = plan_for("SEND-12345-20261201-2030-y.csv", numbers[:1], tmp_path, narrow)
    assert schedule(late, ACCEPTED, narrow)[0].at == datetime(2026, 12, 2, 8, tzinfo=PARIS)


# --- draws ---------------------------------------------------------------------------


def test_draws_follow_the_seed_and_the_rates(tmp_path) -> None:
    config = SandboxConfig(root=tmp_path, seed=3)
    numbers = [r[1] for r in mobiles(5000)] + ["+33144556677"]  # a landline last
    plan = plan_for("SEND-12345-20261201-1000-x.csv", numbers, tmp_path, config)
    first, again = draw(plan, config), draw(plan, config)
    assert np.array_equal(first.network, again.network)
    assert not np.array_equal(first.network, draw(plan, config.replace(seed=4)).network)
    share = np.bincount(first.network[:-1], minlength=len(OUTCOMES)) / 5000
    assert share[CODE[Outcome.DELIVERED]] == pytest.approx(0.92, abs=0.02)
    assert first.network[-1] == CODE[Outcome.FAILED]
    replies = first.reply[first.network == CODE[Outcome.DELIVERED]]
    assert (replies == 1).mean() == pytest.approx(0.01, abs=0.005)
    assert (first.reply[first.network != CODE[Outcome.DELIVERED]] == 0).all()
    only_failed = config.replace(rates={Outcome.FAILED: 1.0})
    assert set(draw(plan, only_failed).network.tolist()) == {CODE[Outcome.FAILED]}


def test_segments_follow_the_account(tmp_path) -> None:
    text = "Fête à la forêt, 70 % de remise sur tout le magasin ce samedi, venez nombreux !!"
    path = tmp_path / "SEND-12345-20261201-1000-x.csv"
    path.write_bytes(records([("C1", "+33612345678", "SHOP", text)]))
    name = parse_name(path.name)
    plain = build_plan(path, path.name, name, SandboxConfig(root=tmp_path))
    unicode = build_plan(path, path.name, name, SandboxConfig(root=tmp_path, unicode=True))
    assert plain.segments.tolist() == [1] and unicode.segments.tolist() == [2]


# --- ACK bytes -----------------------------------------------------------------------

FIELD = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@given(
    st.lists(st.tuples(FIELD, FIELD, FIELD, FIELD, st.sampled_from(OUTCOMES), FIELD), max_size=8)
)
def test_ack_bytes_equal_write_ack_line(rows) -> None:
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 6
    codes = np.array([CODE[o] for o in columns[4]], dtype=np.int8)
    got = ack_bytes(
        *(pa.array(list(c), LS) for c in columns[:4]), codes, pa.array(list(columns[5]), LS)
    )
    expected = b"".join(
        write_ack_line(i, m, o, g, STATUSES[s].idstatus, s.value, a) for i, m, o, g, s, a in rows
    )
    assert got == expected


def test_ack_operator_ids_are_uuid_shaped_and_reproducible() -> None:
    ids = ack_operator_ids(1, "stem", 1000).to_pylist()
    assert ids == ack_operator_ids(1, "stem", 1000).to_pylist()
    assert len(set(ids)) == 1000
    assert all(len(i) == 36 and i.count("-") == 4 and i[8] == "-" for i in ids)


def test_ack_round_trips_through_our_parser() -> None:
    data = ack_bytes(
        pa.array(["A1"], LS),
        pa.array(["+33612345678"], LS),
        pa.array(["SHOP"], LS),
        pa.array(['Hi; "you"'], LS),
        np.array([CODE[Outcome.SENT]], dtype=np.int8),
        pa.array(["op-1"], LS),
    )
    frame = parse_ack(data, "ack")
    assert frame.iloc[0].tolist() == ["A1", "+33612345678", "SHOP", 'Hi; "you"', 2, "sent", "op-1"]


# --- STOP keywords ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", [*STOP_SPELLINGS, "Stop!", "  stop svp", "Arrêt.", "OptOut", "👍 stop"]
)
def test_stop_spellings_are_stops(text: str) -> None:
    assert is_stop(text)


@pytest.mark.parametrize("text", ["non stop", "Merci", "", "STOPPED", "arrêtez", "👍"])
def test_other_replies_are_not_stops(text: str) -> None:
    assert not is_stop(text)


# --- allow-list and config -----------------------------------------------------------


def test_peer_allowed() -> None:
    import ipaddress

    nets = [
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    ]
    assert peer_allowed("127.0.0.1", nets) and peer_allowed("10.2.3.4", nets)
    assert peer_allowed("::ffff:127.0.0.1", nets) and peer_allowed("::1", nets)
    assert not peer_allowed("127.0.0.2", nets) and not peer_allowed("garbage", nets)


@pytest.mark.parametrize(
    "changes",
    [
        {"allow_ips": ("not-an-ip",)},
        {"speed": 0},
        {"stop_rate": 0.8, "mo_rate": 0.5},
        {"rates": {Outcome.REJECTED: 1.0}},
        {"rates": {Outcome.SENT: 0.0}},
        {"balance": -1},
        {"max_records": 2_000_000},
    ],
)
def test_config_refuses_nonsense(tmp_path, changes) -> None:
    with pytest.raises(ValueError):
        SandboxConfig(root=tmp_path, **changes)


def test_ack_delay_threshold(tmp_path) -> None:
    config = SandboxConfig(root=tmp_path)
    assert config.ack_delay(9_999) == timedelta(days=1)
    assert config.ack_delay(10_000) == timedelta(days=4)


# --- event log ---------------------------------------------------------------------


def test_event_log_reader_filters_and_skips_a_partial_last_line(tmp_path) -> None:
    log = EventLog(tmp_path / ".sandbox" / "events.jsonl")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    log.emit("file_done", at, name="a", records=1)
    log.emit("file_rejected", at, name="b")
    log.write_lines(b'{"kind":"file_done","at":"x","name":"c"')  # being written
    assert [e["name"] for e in events(tmp_path, "file_done")] == ["a"]
    assert [e["kind"] for e in events(tmp_path)] == ["file_done", "file_rejected"]
    assert events(tmp_path, name="b")[0]["kind"] == "file_rejected"
    assert events(tmp_path / "nowhere") == []
    log.close()


def test_event_tail_reads_only_what_was_added(tmp_path) -> None:
    from smsdrop.sandbox.events import EventTail

    log = EventLog(tmp_path / ".sandbox" / "events.jsonl")
    tail = EventTail(tmp_path, "file_done")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    log.emit("file_done", at, name="a")
    log.write_lines(b'{"kind":"message_sent","at":"x","row":1}\n{"kind":"file_done","at":"y"')
    assert [e["name"] for e in tail.poll()] == ["a"]
    log.write_lines(b',"name":"b"}\n')
    assert [e["name"] for e in tail.poll()] == ["b"]
    assert tail.poll() == []
    log.close()


def test_event_log_survives_a_line_torn_by_a_killed_process(tmp_path) -> None:
    path = tmp_path / EVENTS_FILE
    log = EventLog(path)
    log.emit("file_done", datetime(2026, 12, 1, tzinfo=UTC), name="a")
    log.close()
    with open(path, "ab") as handle:  # what SIGKILL in the middle of a write leaves
        handle.write(b'{"kind":"message_sent","at":"2026-12-01T00:0')
    log = EventLog(path)  # the restarted sandbox
    log.emit("file_done", datetime(2026, 12, 1, tzinfo=UTC), name="b")
    log.close()
    assert [e["name"] for e in events(tmp_path, "file_done")] == ["a", "b"]
    assert events(tmp_path, "message_sent") == []


def test_sizes_for_the_quota_option() -> None:
    import argparse

    from smsdrop.sandbox.cli import _size

    assert _size("10G") == 10 * 1024**3 and _size("500m") == 500 * 1024**2
    assert _size("1048576") == 1048576 and _size("1.5K") == 1536 and _size("none") is None
    with pytest.raises(argparse.ArgumentTypeError, match="10G"):
        _size("lots")


def test_auth_throttle_doubles_per_failure_and_forgives() -> None:
    from smsdrop.sandbox.server import AuthThrottle

    throttle = AuthThrottle(base=1.0, cap=4.0)
    assert throttle.penalty("10.0.0.1") == 0 and throttle.reserve("10.0.0.1") == 0
    for expected in (1.0, 2.0, 4.0, 4.0):
        throttle.failed("10.0.0.1")
        assert throttle.penalty("10.0.0.1") == expected
    assert throttle.penalty("10.0.0.2") == 0  # per address
    first, second = throttle.reserve("10.0.0.1"), throttle.reserve("10.0.0.1")
    assert 3.0 < first <= 4.0 and second - first == pytest.approx(4.0, abs=0.01)  # spaced
    throttle.succeeded("10.0.0.1")
    assert throttle.penalty("10.0.0.1") == 0 and throttle.reserve("10.0.0.1") == 0


def test_hardening_settings_are_checked() -> None:
    from smsdrop.sandbox import SandboxConfig

    for bad in ({"quota": -1}, {"max_auth_failures": 0}, {"auth_failure_delay": 60.0}):
        with pytest.raises(ValueError):
            SandboxConfig(root=Path("x"), **bad)
