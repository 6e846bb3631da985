"""Provider file names: the spec's examples, strict refusals, DST and chunk ids."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta, timezone
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdrop.errors import InvalidName
from smsdrop.naming import (
    EXTENSIONS,
    PARIS,
    FileKind,
    ProviderName,
    build_name,
    chunk_campaign_ids,
    parse_name,
    to_instant,
)

ALNUM = string.ascii_letters + string.digits

SPEC_EXAMPLES = [
    "SEND-12345-20160728-1827-testpushsftp.tmp",
    "SEND-12345-20160728-1827-testpushsftp.csv",
    "SEND-12345-20160728-1827-testpushsftp.done",
    "SEND-12345-20160728-1827-testpushsftp.reject",
    "ACK-12345-20160728-1827-testpushsftp.csv",
    "STOP-12345-20160728-1827-testpushsftp.csv",
    "SMSMO-12345-20160728-1827-testpushsftp.csv",
]


@pytest.mark.parametrize("name", SPEC_EXAMPLES)
def test_spec_examples_parse(name: str) -> None:
    p = parse_name(name)
    assert (p.service_id, p.campaign_id) == ("12345", "testpushsftp")
    assert p.local == datetime(2016, 7, 28, 18, 27)
    assert p.at == datetime(2016, 7, 28, 16, 27, tzinfo=UTC)  # CEST
    assert p.name == name
    assert p.kind == name.split("-")[0]


def test_lock_extension_and_path_basename() -> None:
    p = parse_name("/sftp/Send/SEND-ab1CD-20260102-0800-Promo2026.lock")
    fields = (p.kind, p.service_id, p.campaign_id, p.ext)
    assert fields == (FileKind.SEND, "ab1CD", "Promo2026", "lock")
    assert parse_name(PurePosixPath("Report/ACK-ab1CD-20260102-0800-x.csv")).kind is FileKind.ACK
    assert parse_name(r"C:\drop\STOP-ab1CD-20260102-0800-x.csv").kind is FileKind.STOP


def test_spec_typo_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidName, match=r"found 4; missing '-' after SEND in 'SEND12345'"):
        parse_name("SEND12345-20160728-1827-testpushsftp.csv")


BAD_NAMES = [
    # (name, field, fragment of the message)
    ("SEND-12345-20160728-1827-testpushsftp", "EXT", "no extension"),
    ("SEND-12345-20160728-1827-test-push.csv", None, "5 parts separated by '-', found 6"),
    ("SEND-12345-20160728.csv", None, "found 3"),
    ("send-12345-20160728-1827-x.csv", "KIND", "one of SEND, ACK, STOP, SMSMO, found 'send'"),
    ("MO-12345-20160728-1827-x.csv", "KIND", "found 'MO'"),
    ("SEND-1234-20160728-1827-x.csv", "SERVICEID", "exactly 5 ASCII letters or digits, found"),
    ("SEND-123456-20160728-1827-x.csv", "SERVICEID", "found '123456'"),
    ("SEND-12_45-20160728-1827-x.csv", "SERVICEID", "found '12_45'"),
    ("SEND-12345-2016728-1827-x.csv", "DATE", "8 digits YYYYMMDD, found '2016728'"),
    ("SEND-12345-2016-07-2-1827-x.csv", None, "found 7"),
    ("SEND-12345-20160230-1827-x.csv", "DATE", "'20160230' is not a calendar date"),
    ("SEND-12345-20161301-1827-x.csv", "DATE", "'20161301' is not a calendar date"),
    ("SEND-12345-20160728-827-x.csv", "HOUR", "4 digits HHMM, found '827'"),
    ("SEND-12345-20160728-18h2-x.csv", "HOUR", "found '18h2'"),
    ("SEND-12345-20160728-2400-x.csv", "HOUR", "'2400' is not a time HHMM"),
    ("SEND-12345-20160728-1860-x.csv", "HOUR", "'1860' is not a time HHMM"),
    ("SEND-12345-20160728-1827-.csv", "CAMPAIGNID", "1 to 20 ASCII letters or digits, found ''"),
    ("SEND-12345-20160728-1827-" + "a" * 21 + ".csv", "CAMPAIGNID", "found '" + "a" * 21 + "'"),
    ("SEND-12345-20160728-1827-promo_été.csv", "CAMPAIGNID", "found 'promo_été'"),
    ("SEND-12345-20160728-1827-x.CSV", "EXT", "for SEND expected one of tmp, csv, lock, done"),
    ("ACK-12345-20160728-1827-x.done", "EXT", "for ACK expected one of csv, found 'done'"),
    ("SEND-\uff11\uff12\uff13\uff14\uff15-20160728-1827-x.csv", "SERVICEID", "found '\uff11"),
    ("SEND-12345-\uff120160728-1827-x.csv", "DATE", "8 digits"),  # fullwidth 2
]


@pytest.mark.parametrize(("name", "field", "fragment"), BAD_NAMES)
def test_bad_names_say_what_is_wrong(name: str, field: str | None, fragment: str) -> None:
    with pytest.raises(InvalidName) as info:
        parse_name(name)
    assert info.value.field == field
    assert info.value.file == name
    assert fragment in str(info.value)
    assert "expected KIND-SERVICEID-YYYYMMDD-HHMM-CAMPAIGNID.EXT" in str(info.value)


def test_build_requires_an_aware_instant() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_name(FileKind.SEND, "12345", datetime(2026, 7, 28, 18, 27), "x")


def test_build_converts_to_paris_and_floors_to_the_minute() -> None:
    when = datetime(2026, 7, 28, 16, 27, 59, 999_999, tzinfo=UTC)
    p = build_name("SEND", "12345", when, "promo", "tmp")
    assert p.name == "SEND-12345-20260728-1827-promo.tmp"
    assert p.at == datetime(2026, 7, 28, 16, 27, tzinfo=UTC)
    ny = datetime(2026, 1, 1, 2, 0, 30, tzinfo=ZoneInfo("America/New_York"))
    assert build_name("ACK", "12345", ny, "x").stem == "ACK-12345-20260101-0800-x"


@pytest.mark.parametrize(
    ("kind", "service_id", "campaign_id", "ext", "field"),
    [
        ("SENDX", "12345", "x", "csv", "KIND"),
        ("SEND", "1234", "x", "csv", "SERVICEID"),
        ("SEND", "12345", "", "csv", "CAMPAIGNID"),
        ("SEND", "12345", "a-b", "csv", "CAMPAIGNID"),
        ("STOP", "12345", "x", "tmp", "EXT"),
    ],
)
def test_build_validates_fields(
    kind: str, service_id: str, campaign_id: str, ext: str, field: str
) -> None:
    with pytest.raises(InvalidName) as info:
        build_name(kind, service_id, datetime(2026, 1, 1, tzinfo=UTC), campaign_id, ext)
    assert info.value.field == field


def test_with_ext_and_with_kind() -> None:
    send = parse_name("SEND-12345-20260728-1827-promo.tmp")
    assert send.with_ext("csv") == "SEND-12345-20260728-1827-promo.csv"
    ack = send.with_kind(FileKind.ACK)
    assert ack.name == "ACK-12345-20260728-1827-promo.csv"
    assert send.with_kind("SMSMO").name == "SMSMO-12345-20260728-1827-promo.csv"
    assert str(ack) == ack.name
    with pytest.raises(InvalidName, match="for ACK expected one of csv"):
        ack.with_ext("done")


# --- DST -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "hhmm"),
    [
        # spring forward 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "0159"),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "0300"),
        (datetime(2026, 3, 29, 1, 1, tzinfo=UTC), "0301"),
        # fall back 2026-10-25: 03:00 CEST goes back to 02:00 CET at 01:00Z
        (datetime(2026, 10, 25, 0, 59, tzinfo=UTC), "0259"),
        (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), "0200"),
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "0230"),  # first 02:30 (CEST)
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "0230"),  # second 02:30 (CET): same name
        (datetime(2026, 10, 25, 2, 0, tzinfo=UTC), "0300"),
    ],
)
def test_build_on_both_sides_of_both_transitions(utc: datetime, hhmm: str) -> None:
    assert build_name("SEND", "12345", utc, "x").stem.split("-")[3] == hhmm


def test_parse_time_in_the_spring_gap_means_first_instant_after_it() -> None:
    for hhmm in ("0200", "0230", "0259"):
        p = parse_name(f"SEND-12345-20260329-{hhmm}-x.csv")
        assert p.at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
        assert p.at.astimezone(PARIS).strftime("%H:%M%z") == "03:00+0200"
    before = parse_name("SEND-12345-20260329-0159-x.csv")
    assert before.at == datetime(2026, 3, 29, 0, 59, tzinfo=UTC)


def test_parse_ambiguous_autumn_time_means_first_occurrence() -> None:
    p = parse_name("SEND-12345-20261025-0230-x.csv")
    assert p.at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert p.at.utcoffset() == timedelta(0)  # instants are UTC-aware (PEP 495 trap)
    assert p.at.astimezone(PARIS).utcoffset() == timedelta(hours=2)  # CEST: first pass
    after = parse_name("SEND-12345-20261025-0300-x.csv")
    assert after.at == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


def test_fold_is_not_part_of_a_name() -> None:
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    a, b = build_name("SEND", "12345", first, "x"), build_name("SEND", "12345", second, "x")
    assert a == b and hash(a) == hash(b) and a.local.fold == 0 and b.at == first


def test_to_instant_in_other_zones() -> None:
    ny = ZoneInfo("America/New_York")  # gap 2026-03-08 02:00 -> 03:00 at 07:00Z
    assert to_instant(datetime(2026, 3, 8, 2, 30), ny) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert to_instant(datetime(2026, 7, 1, 12, 0), UTC) == datetime(2026, 7, 1, 12, tzinfo=UTC)


# --- round trip --------------------------------------------------------------------------

ZONES = [
    UTC,
    PARIS,
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Kolkata"),
    timezone(timedelta(hours=-3)),
]


@st.composite
def names(draw: st.DrawFn) -> tuple[FileKind, str, datetime, str, str]:
    kind = draw(st.sampled_from(list(FileKind)))
    service_id = draw(st.text(ALNUM, min_size=5, max_size=5))
    when = draw(
        st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2099, 12, 31),
            timezones=st.sampled_from(ZONES),
            allow_imaginary=False,
        )
    )
    campaign_id = draw(st.text(ALNUM, min_size=1, max_size=20))
    ext = draw(st.sampled_from(EXTENSIONS[kind]))
    return kind, service_id, when, campaign_id, ext


@settings(max_examples=300)
@given(names())
def test_build_then_parse_round_trips(args: tuple[FileKind, str, datetime, str, str]) -> None:
    kind, service_id, when, campaign_id, ext = args
    built = build_name(kind, service_id, when, campaign_id, ext)
    parsed = parse_name(built.name)
    assert parsed == built
    assert (parsed.kind, parsed.service_id, parsed.campaign_id, parsed.ext) == (
        kind,
        service_id,
        campaign_id,
        ext,
    )
    assert parsed.name == built.name
    assert re.fullmatch(r"[A-Z]+-[A-Za-z0-9]{5}-\d{8}-\d{4}-[A-Za-z0-9]{1,20}\.[a-z]+", parsed.name)
    # The instant: floored to the minute, except the repeated autumn hour, read as its
    # first occurrence (one hour earlier).
    lag = when - parsed.at
    paris = when.astimezone(PARIS)
    assert timedelta(0) <= lag < timedelta(minutes=1) or (
        paris.fold == 1 and lag - timedelta(hours=1) < timedelta(minutes=1)
    )
    assert parsed.at.astimezone(PARIS).replace(tzinfo=None) == parsed.local


# --- chunk ids ---------------------------------------------------------------------------


def test_chunk_ids_examples() -> None:
    assert chunk_campaign_ids("promo", 1) == ["promo"]
    assert chunk_campaign_ids("a" * 20, 1) == ["a" * 20]
    assert chunk_campaign_ids("promo", 3) == ["promo1", "promo2", "promo3"]
    ids = chunk_campaign_ids("promo", 12)
    assert ids[0] == "promo01" and ids[-1] == "promo12"
    assert chunk_campaign_ids("Promo", 10_00)[999] == "Promo1000"
    # truncation: 12 chars kept + 6-char blake2b/base36 digest + index; pinned on purpose:
    # changing it would give a re-run different names than the first run.
    assert chunk_campaign_ids("a" * 20, 12)[:2] == ["aaaaaaaaaaaa1kkqjg01", "aaaaaaaaaaaa1kkqjg02"]


def test_long_ids_sharing_a_prefix_do_not_collide() -> None:
    a = chunk_campaign_ids("SummerSale2026Paris1", 2)
    b = chunk_campaign_ids("SummerSale2026Paris2", 2)
    c = chunk_campaign_ids("SummerSale2026Lyon", 100)
    assert not set(a) & set(b)
    assert all(len(x) == 20 and x.startswith("SummerSale202") for x in a + b)
    assert chunk_campaign_ids("SummerSale2026Lyon", 99)[0] == "SummerSale2026Lyon01"
    assert len(c[0]) == 20 and c[0].endswith("001")


@pytest.mark.parametrize(("campaign_id", "n"), [("x", 0), ("x", 10_000), ("x", -1)])
def test_chunk_count_bounds(campaign_id: str, n: int) -> None:
    with pytest.raises(ValueError, match="n_files"):
        chunk_campaign_ids(campaign_id, n)


def test_chunk_refuses_invalid_campaign_id() -> None:
    with pytest.raises(InvalidName) as info:
        chunk_campaign_ids("bad-id", 2)
    assert info.value.field == "CAMPAIGNID"


@settings(max_examples=150)
@given(st.text(ALNUM, min_size=1, max_size=20), st.integers(1, 9999))
def test_chunk_ids_properties(campaign_id: str, n: int) -> None:
    ids = chunk_campaign_ids(campaign_id, n)
    assert len(ids) == n == len(set(ids))
    assert all(1 <= len(i) <= 20 and i.isascii() and i.isalnum() for i in ids)
    assert ids == chunk_campaign_ids(campaign_id, n)
    if n == 1:
        assert ids == [campaign_id]
    # every chunk id makes a valid SEND name
    name = build_name("SEND", "12345", datetime(2026, 1, 1, tzinfo=UTC), ids[-1]).name
    assert parse_name(name).campaign_id == ids[-1]


@settings(max_examples=150)
@given(st.text(ALNUM, min_size=15, max_size=20), st.text(ALNUM, min_size=15, max_size=20))
def test_distinct_long_ids_give_distinct_chunks(a: str, b: str) -> None:
    if a != b:
        assert not set(chunk_campaign_ids(a, 100)) & set(chunk_campaign_ids(b, 100))


def test_provider_name_is_validated_on_construction() -> None:
    with pytest.raises(ValueError, match="minute precision"):
        ProviderName(FileKind.SEND, "12345", datetime(2026, 1, 1, 8, 0, 30), "x")
    with pytest.raises(ValueError, match="naive"):
        ProviderName(FileKind.SEND, "12345", datetime(2026, 1, 1, tzinfo=UTC), "x")
