"""Report files: the spec's ACK line, tolerance, typed columns, located errors, and
incremental reads of growing STOP/SMSMO files."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdrop.errors import InputError
from smsdrop.naming import PARIS, to_instant
from smsdrop.reports import (
    ACK_COLUMNS,
    BOM,
    MAX_OPEN_LINES,
    MAX_RECORD_BYTES,
    REPLY_COLUMNS,
    SPLIT_BYTES,
    Chunk,
    clean_bytes,
    format_record,
    format_reply_date,
    format_reply_hour,
    mask_raw,
    parse_ack,
    parse_ack_tolerant,
    parse_replies,
    parse_replies_from,
    shown,
    shown_number,
    write_ack_line,
    write_reply_line,
)
from smsdrop.warehouse.optout import optout_keyword

SPEC_ACK = (
    "VZBL6259;+33787789959;Logement;http://www.URL.com/fr/ref-VSQR0339 4P 79m2 3ème étage"
    " Imm ancien 2Chbres Volumes vue Parfait état;2 ;sent;92c30692-705b-4433-8789- 92a1e78104b4"
).encode()

ACK_DTYPES = {
    "idremote": pd.ArrowDtype(pa.string()),
    "msisdn": pd.ArrowDtype(pa.string()),
    "oadc": pd.ArrowDtype(pa.string()),
    "msg": pd.ArrowDtype(pa.string()),
    "idstatus": pd.ArrowDtype(pa.int64()),
    "status": pd.ArrowDtype(pa.string()),
    "ackoperator": pd.ArrowDtype(pa.string()),
}
REPLY_DTYPES = {
    "msisdn": pd.ArrowDtype(pa.string()),
    "date": pd.ArrowDtype(pa.date32()),
    "hour": pd.ArrowDtype(pa.time32("s")),
    "message": pd.ArrowDtype(pa.string()),
    "idremote": pd.ArrowDtype(pa.string()),
    "received_at": pd.ArrowDtype(pa.timestamp("s", tz="Europe/Paris")),
}


def test_spec_ack_example_line() -> None:
    df = parse_ack(SPEC_ACK, "ACK-12345-20160728-1827-testpushsftp.csv")  # no final newline
    assert tuple(df.columns) == ACK_COLUMNS
    assert df.dtypes.to_dict() == ACK_DTYPES
    row = df.iloc[0].to_dict()
    assert row["idremote"] == "VZBL6259" and row["msisdn"] == "+33787789959"
    assert row["idstatus"] == 2
    assert row["status"] == "sent"
    assert row["ackoperator"] == "92c30692-705b-4433-8789- 92a1e78104b4"  # inner space kept
    assert row["msg"].endswith("3ème étage Imm ancien 2Chbres Volumes vue Parfait état")


def test_bom_crlf_spaces_and_blank_lines() -> None:
    data = (
        b"\xef\xbb\xbf ID1 ; +33611111111 ;Shop; Hello ;  0;sent ; op-1 \r\n"
        b"\r\n"
        b"ID2;+33622222222;Shop;Bye;-1;failed;op-2\r\n"
    )
    df = parse_ack(data, "ack.csv")
    assert df["idremote"].tolist() == ["ID1", "ID2"]
    assert df["msisdn"].tolist() == ["+33611111111", "+33622222222"]
    assert df["msg"].tolist() == [" Hello ", "Bye"]  # free text is kept as sent
    assert df["idstatus"].tolist() == [0, -1]
    assert df["status"].tolist() == ["sent", "failed"]
    assert df["ackoperator"].tolist() == ["op-1", "op-2"]


def test_quoted_message_with_delimiter_newline_and_doubled_quotes() -> None:
    data = (
        b'+33611111111;20260728;182745;"Non; merci.\r\nDites ""STOP"" \xe2\x82\xac";ID1\n'
        b'+33622222222;20260728;182800;"";ID2\n'
    )
    df = parse_replies(data, "SMSMO.csv")
    assert df["message"].tolist() == ['Non; merci.\r\nDites "STOP" €', ""]
    assert df["idremote"].tolist() == ["ID1", "ID2"]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n", b"\r\n\r\n"])
def test_empty_files_give_empty_typed_frames(data: bytes) -> None:
    ack, replies = parse_ack(data, "a"), parse_replies(data, "r")
    assert ack.empty and ack.dtypes.to_dict() == ACK_DTYPES
    assert replies.empty and replies.dtypes.to_dict() == REPLY_DTYPES
    assert tuple(replies.columns) == REPLY_COLUMNS


@pytest.mark.parametrize(
    ("date_s", "hour_s"),
    [
        ("20260728", "1827"),
        ("2026-07-28", "18:27"),
        ("28/07/2026", "182700"),
        ("20260728", "18:27:00"),
        (" 20260728 ", " 1827 "),
    ],
)
def test_date_and_hour_spellings(date_s: str, hour_s: str) -> None:
    df = parse_replies(f"+33611111111;{date_s};{hour_s};STOP;ID1\n".encode(), "STOP.csv")
    assert df["date"].iloc[0] == date(2026, 7, 28)
    assert df["hour"].iloc[0] == time(18, 27)
    assert df["received_at"].iloc[0] == pd.Timestamp("2026-07-28 16:27", tz="UTC")
    assert str(df["received_at"].iloc[0].tz) == "Europe/Paris"


def test_received_at_follows_the_naming_dst_rule() -> None:
    stamps = [
        datetime(2026, 3, 29, 1, 59),
        datetime(2026, 3, 29, 2, 0),  # gap
        datetime(2026, 3, 29, 2, 30),  # gap
        datetime(2026, 3, 29, 3, 0),
        datetime(2026, 10, 25, 1, 59, 59),
        datetime(2026, 10, 25, 2, 30),  # repeated: first occurrence
        datetime(2026, 10, 25, 3, 0),
    ]
    data = b"".join(
        f"+336;{s:%Y%m%d};{s:%H%M%S};m;x\n".encode()
        for s in stamps  # naive: these are wall times
    )
    got = parse_replies(data, "STOP.csv")["received_at"].tolist()
    # compare in UTC: a Paris-zoned datetime in the repeated hour never equals another
    # zone's (PEP 495); pandas Timestamps compare by instant and have no such trap.
    assert [g.tz_convert("UTC").to_pydatetime() for g in got] == [to_instant(s) for s in stamps]
    assert got == [pd.Timestamp(to_instant(s)) for s in stamps]
    assert got[2] == pd.Timestamp("2026-03-29 03:00", tz="Europe/Paris")
    assert got[5].utcoffset() == timedelta(hours=2)


GARBAGE_ACK = [
    # (data, line, field, fragment)
    (b"a;b;c;d;2;sent\n", 1, "ACKOPERATOR", "expected 7 fields"),
    (b"a;b;c;d;2;sent;op\na;b;c;d;2;sent;op;extra\n", 2, "record", "found 8"),
    (
        b"a;b;c;d;2;sent;op\n\na;b;c;d;two;sent;op\n",
        3,
        "IDSTATUS",
        "an integer, found a value of 3 characters (not shown)",
    ),
    (b"a;b;c;d;;sent;op\n", 1, "IDSTATUS", "found ''"),
    (b"a;b;c;d;2.0;sent;op\n", 1, "IDSTATUS", "found '2.0'"),
    (
        b'a;b;c;"multi\nline\nmsg";2;sent;op\na;b;c;d;x;sent;op\n',
        4,
        "IDSTATUS",
        "found a value of 1 character (not shown)",
    ),
    (b'a;b;c;"multi\r\nline";2;sent;op\r\na;b;c\r\n', 3, "MSG", "found 3"),
    (
        b'\xef\xbb\xbfa;b;c;d;2;sent;op\r\na;b;c;"unterminated;2;sent;op\r\n',
        2,
        "MSG",
        "unterminated",
    ),
    (b"a;b;c;d;2;sent;op\na;b;c;\xffd;2;sent;op\n", 2, "MSG", "invalid UTF-8"),
    # even quote count, yet the last quoted field never closes (pyarrow alone would accept)
    (b'a;b;c;5" screen;2;sent;op\na;b;c;d;2;sent;"op\n', 2, "ACKOPERATOR", "unterminated"),
]


@pytest.mark.parametrize(("data", "line", "field", "fragment"), GARBAGE_ACK)
def test_ack_garbage_is_located(data: bytes, line: int, field: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_ack(data, "ACK-12345-20260728-1827-x.csv")
    err = info.value
    assert (err.file, err.line, err.field) == ("ACK-12345-20260728-1827-x.csv", line, field)
    assert fragment in str(err)
    assert str(err).startswith(f"ACK-12345-20260728-1827-x.csv:{line} field {field}: ")


GARBAGE_REPLIES = [
    (b"+336;20260230;1200;m;x\n", 1, "DATE", "a date YYYYMMDD, YYYY-MM-DD or DD/MM/YYYY"),
    (b"+336;20260728;1200;m;x\n+336;2026-7-28;1200;m;x\n", 2, "DATE", "found '2026-7-28'"),
    (b"+336;28/07/26;1200;m;x\n", 1, "DATE", "found '28/07/26'"),
    (b"+336;20260728;2400;m;x\n", 1, "HOUR", "a time HHMM, HHMMSS, HH:MM or HH:MM:SS"),
    (b"+336;20260728;12:60;m;x\n", 1, "HOUR", "found '12:60'"),
    (b"+336;20260728;;m;x\n", 1, "HOUR", "found ''"),
    (b"+336;20260728;1200;m\n", 1, "IDREMOTE", "expected 5 fields"),
]


@pytest.mark.parametrize(("data", "line", "field", "fragment"), GARBAGE_REPLIES)
def test_reply_garbage_is_located(data: bytes, line: int, field: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_replies(data, "STOP.csv")
    assert (info.value.file, info.value.line, info.value.field) == ("STOP.csv", line, field)
    assert fragment in str(info.value)


# --- incremental -----------------------------------------------------------------------


def test_incremental_leaves_the_partial_tail() -> None:
    first = b"+336;20260728;1200;STOP;ID1\r\n"
    partial = b'+337;20260728;1201;"Stop\r\nstill open'
    chunk = parse_replies_from(first + partial, "STOP.csv", 0)
    assert chunk.frame["msisdn"].tolist() == ["+336"]
    assert chunk.next_offset == len(first) and chunk.lines == 1
    rest = partial + b'";ID2\r\n'
    chunk2 = parse_replies_from(rest, "STOP.csv", chunk.next_offset, first_line=2)
    assert chunk2.frame["message"].tolist() == ["Stop\r\nstill open"]
    assert chunk2.next_offset == len(first) + len(rest) and chunk2.lines == 2
    nothing = parse_replies_from(b"", "STOP.csv", chunk2.next_offset)
    assert nothing.frame.empty and nothing.next_offset == chunk2.next_offset
    assert nothing.frame.dtypes.to_dict() == REPLY_DTYPES


def test_lone_cr_at_the_end_waits_for_the_next_byte() -> None:
    chunk = parse_replies_from(b"+336;20260728;1200;STOP;ID1\r", "STOP.csv", 0)
    assert chunk.frame.empty and chunk.next_offset == 0
    chunk = parse_replies_from(b'+336;20260728;1200;"a";ID1\r', "STOP.csv", 0)
    assert chunk.frame.empty and chunk.next_offset == 0


def test_incremental_errors_name_the_line_or_the_byte_offset() -> None:
    data = b"+336;20260728;1200;m;x\n+336;20260231;1200;m;x\n"
    with pytest.raises(InputError) as info:
        parse_replies_from(data, "STOP.csv", 500, first_line=10)
    assert (info.value.line, info.value.field) == (11, "DATE")
    with pytest.raises(InputError, match=r"\(byte offset 523\)") as info:
        parse_replies_from(data, "STOP.csv", 500)
    assert info.value.line is None


def test_mid_file_bom_is_data_not_a_marker() -> None:
    data = b"+336;20260728;1200;m;x\n\xef\xbb\xbf+337;20260728;1200;m;x\n"
    whole = parse_replies(data, "STOP.csv")
    second = parse_replies_from(data[23:], "STOP.csv", 23)
    assert whole["msisdn"].tolist()[1] == "\ufeff+337" == second.frame["msisdn"].iloc[0]


# Message text that stresses the CSV: delimiters, quotes, CR/LF, multi-byte characters.
MESSAGES = st.text(
    alphabet=st.sampled_from(list('ab ;"\r\n') + ["é", "€", "😀", "\u00a0", "\ufeff"]),
    max_size=12,
)
WHEN = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC, microsecond=0)
)
WHEN_0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
RECORDS = st.lists(
    st.tuples(
        st.from_regex(r"\+33[67][0-9]{8}", fullmatch=True),
        WHEN,
        MESSAGES,
        st.text("AZ09", max_size=4),
    ),
    max_size=8,
)


def _file(records: list[tuple[str, datetime, str, str]], bom: bool, lf: bool) -> bytes:
    data = b"".join(write_reply_line(*r) for r in records)
    if lf:  # the provider may use LF: outside quotes CRLF → LF (quoted CRs stay)
        data = data.replace(b"\r\n", b"\n")
    return (b"\xef\xbb\xbf" if bom else b"") + data


@settings(max_examples=80, deadline=None)
@given(RECORDS, st.booleans(), st.booleans(), st.data())
def test_reading_in_pieces_equals_reading_whole(
    records: list[tuple[str, datetime, str, str]], bom: bool, lf: bool, data: st.DataObject
) -> None:
    file = _file(records, bom, lf)
    whole = parse_replies(file, "SMSMO.csv")
    # the writer round-trips
    assert whole["msisdn"].tolist() == [r[0] for r in records]
    assert whole["idremote"].tolist() == [r[3] for r in records]
    if not lf:
        assert whole["message"].tolist() == [r[2] for r in records]
    assert whole["received_at"].tolist() == [pd.Timestamp(r[1]) for r in records]
    # the file grows by arbitrary byte splits (inside UTF-8 sequences, inside quotes, …)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(file)), max_size=6)))
    offset, line, frames = 0, 1, []
    for size in [*cuts, len(file)]:
        chunk = parse_replies_from(file[offset:size], "SMSMO.csv", offset, first_line=line)
        assert offset <= chunk.next_offset <= size
        offset, line = chunk.next_offset, line + chunk.lines
        frames.append(chunk.frame)
    assert offset == (len(file) if records else 0)  # a lone BOM waits for a record
    pieces = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(pieces, whole)


# Hostile bytes: quotes anywhere (not only RFC-placed), lone CRs, blank lines. Whenever the
# whole file parses, reading it in pieces must give the same rows.
HOSTILE = st.lists(
    st.lists(st.sampled_from(['"', "a", " ", "\r", "\n", '""', "é"]), max_size=5).map("".join),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(HOSTILE, st.data())
def test_pieces_match_whole_on_hostile_quoting(messages: list[str], data: st.DataObject) -> None:
    file = b"".join(f"+336;20260728;1200;{m};x\n".encode() for m in messages)
    try:
        whole = parse_replies(file, "SMSMO.csv")
    except InputError:
        return
    cuts = sorted(data.draw(st.lists(st.integers(0, len(file)), max_size=5)))
    offset, frames = 0, []
    for size in [*cuts, len(file)]:
        chunk = parse_replies_from(file[offset:size], "SMSMO.csv", offset)
        offset = chunk.next_offset
        frames.append(chunk.frame)
    assert offset == len(file)
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole)


# --- writing ---------------------------------------------------------------------------


def test_format_record_quotes_only_when_needed() -> None:
    assert format_record(["a", "b c", ""]) == b"a;b c;\r\n"
    assert format_record(["x;y", 'say "hi"', "l1\nl2"]) == b'"x;y";"say ""hi""";"l1\nl2"\r\n'


def test_writer_helpers_round_trip() -> None:
    at = datetime(2026, 10, 25, 1, 30, 5, tzinfo=UTC)  # 02:30:05 CET, second pass
    assert (format_reply_date(at), format_reply_hour(at)) == ("20261025", "023005")
    assert format_reply_hour(datetime(2026, 7, 28, 16, 27, 45, tzinfo=UTC)) == "182745"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_reply_date(datetime(2026, 7, 28))
    ack = write_ack_line("ID1", "+33611111111", "Shop", 'Promo; "-20%"', 2, "sent", "op")
    row = parse_ack(ack, "ack.csv").iloc[0]
    assert (row["msg"], row["idstatus"]) == ('Promo; "-20%"', 2)
    reply = write_reply_line(
        "+33611111111", datetime(2026, 7, 28, 18, 27, 45, tzinfo=PARIS), "STOP", ""
    )
    assert reply == b"+33611111111;20260728;182745;STOP;\r\n"


# --- tolerant reading: every record loaded or set aside (the loader's mode) -------------

TOKEN = re.compile(r"K[0-9]+")


def _tolerant(data: bytes, offset: int = 0, **options: Any) -> Chunk:
    return parse_replies_from(
        data, "STOP-12345-20261201-1000-x.csv", offset, quarantine=True, **options
    )


def _check_chunk(chunk: Chunk, data: bytes, offset: int = 0) -> None:
    """What holds for any input: typed frame, spans inside what was consumed, in order and
    apart, raw text masked."""
    assert chunk.frame.dtypes.to_dict() == REPLY_DTYPES
    assert offset <= chunk.next_offset <= offset + len(data)
    end = offset
    for q in chunk.quarantined:
        assert end <= q.offset and q.length >= 0 and q.offset + q.length <= chunk.next_offset
        end = q.offset + q.length
        assert re.search(r"[0-9]{9}", q.raw) is None, q  # no phone number in full
        assert "\0" not in q.raw and q.field and q.reason
    assert chunk.cleaned >= 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.booleans(), st.booleans())
def test_tolerant_reading_never_raises_on_random_bytes(
    data: bytes, final: bool, require: bool
) -> None:
    chunk = _tolerant(data, final=final, require_msisdn=require)
    _check_chunk(chunk, data)
    if final:
        assert chunk.next_offset == len(data)
    consumed = data[: chunk.next_offset]
    if consumed.strip(b"\r\n") and consumed not in (BOM,):
        assert len(chunk.frame) + len(chunk.quarantined) >= 1  # something was made of it
    elif not consumed.strip(b"\r\n"):
        assert chunk.frame.empty and not chunk.quarantined


BAD_BYTES = st.sampled_from([b"\0", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80"])
#: Free text without CR, LF or a quote (the writer quotes it when it holds ';').
PLAIN = st.text(
    alphabet=st.sampled_from(list("ab Z09;,.!?'") + ["é", "€", "😀", "\u00a0"]), max_size=10
)
#: Garbage lines without a quote: a quote in the middle of a field is literal, but it can
#: close one a truncated line left open, and the merged lines can then be a valid record
#: (a message over several lines): the mutation test below has quotes anywhere.
JUNK = st.lists(
    st.one_of(
        st.sampled_from([b";", b"a", b" ", b"0", b"12", b"+336", b"x", b"\xc3\xa9"]), BAD_BYTES
    ),
    min_size=1,
    max_size=12,
).map(b"".join)


@st.composite
def _report(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str, int, bool]]]:
    """A report of valid records (IDREMOTE K<i>) and hostile lines, and for each line:
    (kind, number, offset, valid)."""
    out, lines = bytearray(), []
    for i in range(draw(st.integers(0, 12))):
        number = f"+336{draw(st.integers(10_000_000, 99_999_999))}"
        when = draw(WHEN)
        good = write_reply_line(number, when, draw(PLAIN), f"K{i}")
        kind = draw(
            st.sampled_from(["valid", "valid", "dirty", "junk", "truncated", "fields", "date"])
        )
        if kind == "dirty":  # NUL or invalid UTF-8 inside the message: cleaned, still loaded
            cut = good.index(b";K")
            line = good[:cut] + draw(BAD_BYTES) + good[cut:]
        elif kind == "junk":
            line = draw(JUNK).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n"
        elif kind == "truncated":  # may leave a quote open: it must not swallow what follows
            line = good[: draw(st.integers(1, len(good) - 3))].rstrip(b"\r") + b"\r\n"
        elif kind == "fields":
            line = good.replace(b";K", draw(st.sampled_from([b";;K", b"K"])), 1)
        elif kind == "date":
            line = good.replace(f";{format_reply_date(when)};".encode(), b";20261340;", 1)
        else:
            line = good
        if draw(st.booleans()):
            line = line.replace(b"\r\n", b"\n")
        valid = kind in ("valid", "dirty")
        lines.append((kind, number, len(out), valid))
        out += line
        if draw(st.integers(0, 5)) == 0:
            out += b"\r\n"  # a blank line
    return bytes(out), lines


@settings(max_examples=150, deadline=None)
@given(_report(), st.data())
def test_tolerant_reading_loads_or_sets_aside_every_line(
    report: tuple[bytes, list[tuple[str, str, int, bool]]], data: st.DataObject
) -> None:
    file, lines = report
    chunk = _tolerant(file, final=True)
    _check_chunk(chunk, file)
    assert chunk.next_offset == len(file)
    # every non-blank line is one loaded row or one record set aside: none lost
    assert len(chunk.frame) + len(chunk.quarantined) == len(lines)
    loaded = set(chunk.frame["idremote"])
    for i, (kind, _, offset, valid) in enumerate(lines):
        if valid:
            assert f"K{i}" in loaded, (kind, offset)
        if kind in ("fields", "date"):
            assert offset in {q.offset for q in chunk.quarantined}
    assert {q.offset for q in chunk.quarantined} <= {o for *_, o, v in lines if not v}
    shown_text = " ".join(q.raw + q.reason for q in chunk.quarantined)
    for _, number, *_ in lines:
        assert number not in shown_text and number[1:] not in shown_text
    # read as it grows (arbitrary byte splits), the last read final: the same outcome
    cuts = sorted(data.draw(st.lists(st.integers(0, len(file)), max_size=5)))
    offset, frames, aside = 0, [], []
    for size in [*cuts, len(file)]:
        piece = _tolerant(file[offset:size], offset, final=size == len(file))
        _check_chunk(piece, file[offset:size], offset)
        offset = piece.next_offset
        frames.append(piece.frame)
        aside.extend(piece.quarantined)
    assert offset == len(file)
    assert sorted(pd.concat(frames)["idremote"]) == sorted(chunk.frame["idremote"])
    assert [q.offset for q in aside] == [q.offset for q in chunk.quarantined]


def test_a_stray_quote_costs_its_line_only() -> None:
    good = [write_reply_line(f"+3361234560{i}", WHEN_0, "STOP", f"K{i}") for i in range(3)]
    stray = b'+33612345699;20261201;103000;"Stop svp;K9\r\n'
    data = good[0] + stray + good[1] + good[2]
    waiting = _tolerant(data)  # the quote may still close: the rest waits
    assert waiting.frame["idremote"].tolist() == ["K0"] and not waiting.quarantined
    assert waiting.next_offset == len(good[0])
    whole = _tolerant(data, final=True)
    assert whole.frame["idremote"].tolist() == ["K0", "K1", "K2"]
    (q,) = whole.quarantined
    assert (q.offset, q.length, q.line, q.field) == (len(good[0]), len(stray), 2, "MESSAGE")
    assert "unterminated" in q.reason and q.raw == '+*********99;20261201;103000;"Stop svp;K9'
    # a growing file: once the quote has stayed open over MAX_OPEN_LINES lines, it is stray
    many = good[0] + stray + b"".join([good[1]] * (MAX_OPEN_LINES + 1))
    stuck = _tolerant(many)
    assert stuck.next_offset == len(many) and len(stuck.frame) == MAX_OPEN_LINES + 2
    assert [q.offset for q in stuck.quarantined] == [len(good[0])]


def test_a_quote_closed_lines_later_is_split_by_line() -> None:
    head = b'+33612345601;20261201;103000;"Stop;K1\r\n'
    second = write_reply_line("+33612345602", WHEN_0, "a;b", "K2")  # its quote closes head's
    chunk = _tolerant(head + second)
    assert chunk.frame["idremote"].tolist() == ["K2"]
    assert [q.offset for q in chunk.quarantined] == [0]
    assert "over 2 lines" in chunk.quarantined[0].reason


def test_nul_and_invalid_utf8_are_cleaned_and_the_stop_kept() -> None:
    data = b"+33612345601;20261201;103000;STOP\0\xff\xfe merci;K1\r\n"
    chunk = _tolerant(data, require_msisdn=True)
    assert chunk.frame["message"].tolist() == ["STOP??? merci"] and chunk.cleaned == 3
    assert optout_keyword(chunk.frame["message"]).tolist() == ["STOP"]
    assert clean_bytes(b"\xc3\xa9\0") == (b"\xc3\xa9?", 1)


def test_unusable_stop_numbers_are_set_aside_masked() -> None:
    data = (
        b"+33612345601;20261201;103000;STOP;K1\r\n"
        b"+999 6 12 34 56 02;20261201;103000;STOP;K2\r\n"
        b"call me;20261201;103000;STOP;K3\r\n"
    )
    chunk = _tolerant(data, require_msisdn=True)
    assert chunk.frame["idremote"].tolist() == ["K1"]
    assert [(q.line, q.field) for q in chunk.quarantined] == [(2, "MSISDN"), (3, "MSISDN")]
    assert "6 12 34 56 02" not in chunk.quarantined[0].raw
    assert "not a phone number" in chunk.quarantined[0].reason
    assert chunk.quarantined[0].reason.endswith("found '+*** * ** ** ** 02'")  # masked
    assert chunk.quarantined[1].reason.endswith("a value of 7 characters (not shown)")
    assert len(_tolerant(data).frame) == 3  # SMSMO: a reply is kept as typed


def test_huge_fields_are_set_aside() -> None:
    huge = b"+33612345601;20261201;103000;" + b"x" * (MAX_RECORD_BYTES + 1) + b";K1\r\n"
    ok = b"+33612345602;20261201;103000;STOP;K2\r\n"
    chunk = _tolerant(huge + ok)
    assert chunk.frame["idremote"].tolist() == ["K2"]
    (q,) = chunk.quarantined
    assert q.field == "record" and "longer than" in q.reason and len(q.raw) < 1100


def test_values_in_errors_are_masked() -> None:
    assert shown("2026-7-28") == "'2026-7-28'"
    assert shown("+33612345678") == "a value of 12 characters (not shown)"
    assert shown("Bonjour") == "a value of 7 characters (not shown)"
    assert shown_number("06 12 34 56 78") == "'** ** ** ** 78'"
    assert shown_number("rappel") == "a value of 6 characters (not shown)"
    data = b"+33612345601;+33612345678;103000;STOP;K1\n"
    with pytest.raises(InputError) as info:
        parse_replies(data, "STOP.csv")
    assert "612345678" not in str(info.value) and info.value.field == "DATE"
    assert mask_raw(b"+33612345678;20261201;103000;appelle le 06 12 34 56 78;x") == (
        "+*********78;20261201;103000;appelle le ** ** ** ** 78;x"
    )


MUTATION = st.tuples(
    st.integers(0, 10_000),
    st.sampled_from(["insert", "replace", "delete"]),
    st.sampled_from([b'"', b";", b"\r", b"\n", b"\r\n", b"\0", b"\xff", b"\xc3", b"1", b" "]),
)


def _mutate(data: bytes, mutations: list[tuple[int, str, bytes]]) -> bytes:
    out = bytearray(data)
    for pos, op, byte in mutations:
        at = pos % (len(out) + 1)
        if op == "insert":
            out[at:at] = byte
        elif op == "replace" and at < len(out):
            out[at : at + 1] = byte
        elif op == "delete":
            del out[at : at + 1]
    return bytes(out)


@settings(max_examples=150, deadline=None)
@given(RECORDS, st.lists(MUTATION, max_size=8), st.booleans(), st.data())
def test_tolerant_reading_of_mutated_reports(
    records: list[tuple[str, datetime, str, str]],
    mutations: list[tuple[int, str, bytes]],
    final: bool,
    data: st.DataObject,
) -> None:
    file = _mutate(_file(records, bom=False, lf=False), mutations)
    chunk = _tolerant(file, final=final, require_msisdn=data.draw(st.booleans()))
    _check_chunk(chunk, file)
    assert not final or chunk.next_offset == len(file)
    # in pieces: never raises either, and never goes back
    offset = 0
    for size in sorted(data.draw(st.lists(st.integers(0, len(file)), max_size=4))):
        if size < offset:
            continue
        piece = _tolerant(file[offset:size], offset)
        _check_chunk(piece, file[offset:size], offset)
        offset = piece.next_offset
    # the strict reader raises InputError only, with no number in it
    try:
        parse_replies(file, "STOP.csv")
    except InputError as error:
        assert re.search(r"[0-9]{9}", str(error)) is None, str(error)


@settings(max_examples=200, deadline=None)
@given(st.lists(MUTATION, max_size=6))
def test_tolerant_ack_reading(mutations: list[tuple[int, str, bytes]]) -> None:
    lines = [
        write_ack_line(f"C{i}", f"+3361234560{i}", "SHOP", "Promo; -20%", 2, "sent", "op")
        for i in range(4)
    ]
    file = _mutate(b"".join(lines), mutations)
    chunk = parse_ack_tolerant(file, "ACK-12345-20261201-1000-x.csv")
    assert chunk.next_offset == len(file)
    assert tuple(chunk.frame.columns) == ACK_COLUMNS
    for q in chunk.quarantined:
        assert re.search(r"[0-9]{9}", q.raw) is None
    if not mutations:
        assert chunk.frame["idremote"].tolist() == ["C0", "C1", "C2", "C3"]
        assert not chunk.quarantined
    try:
        parse_ack(file, "ack.csv")
    except InputError as error:
        assert re.search(r"[0-9]{9}", str(error)) is None, str(error)


@pytest.mark.parametrize("message", ["STOP merci", "STOP; merci"])  # no quote / quoted
def test_big_reports_with_bad_lines_are_read_in_halves(message: str) -> None:
    """Over SPLIT_BYTES, a region with a bad line is halved until the bad lines are
    isolated (and quote-free regions are checked line by line with numpy): the outcome is
    the same line for line."""
    lines, bad = [], {}
    for i in range(3000):
        good = write_reply_line(f"+336{12000000 + i:08d}", WHEN_0, message, f"K{i}")
        if i % 97 == 5:
            lines.append(b"x;y\r\n")
            bad[i] = "HOUR"
        elif i % 89 == 7:
            lines.append(good.replace(f"+336{12000000 + i:08d}".encode(), b"rappel", 1))
            bad[i] = "MSISDN"
        elif i % 83 == 3:
            lines.append(good.replace(b";20261201;", b";20261301;", 1))
            bad[i] = "DATE"
        else:
            lines.append(good)
    data = b"".join(lines)
    assert len(data) > 10 * SPLIT_BYTES
    chunk = _tolerant(data, require_msisdn=True)
    _check_chunk(chunk, data)
    assert chunk.next_offset == len(data)
    expected = [f"K{i}" for i in range(3000) if i not in bad]
    assert chunk.frame["idremote"].tolist() == expected
    offsets = np.cumsum([0] + [len(line) for line in lines])
    assert [(q.offset, q.line, q.field) for q in chunk.quarantined] == [
        (int(offsets[i]), i + 1, field) for i, field in sorted(bad.items())
    ]


def test_a_chunk_holds_arrow_rows_and_shows_the_same_to_pandas() -> None:
    chunk = parse_replies_from(b"+33611111111;20261201;1030;STOP;C1\r\n", "STOP.csv", 0)
    assert isinstance(chunk.table, pa.Table)
    assert chunk.frame.equals(chunk.table.to_pandas(types_mapper=pd.ArrowDtype))
    assert dict(chunk.frame.dtypes) == REPLY_DTYPES
    tolerant = parse_ack_tolerant(SPEC_ACK, "ACK.csv")
    assert tolerant.frame.equals(parse_ack(SPEC_ACK, "ACK.csv"))
