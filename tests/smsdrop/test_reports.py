"""Report files: the spec's ACK line, tolerance, typed columns, located errors, and
incremental reads of growing STOP/SMSMO files."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_samples import (
    ACK_DTYPES,
    RECORDS,
    REPLY_DTYPES,
    SPEC_ACK,
    reply_file,
)

from smsdrop.errors import InputError
from smsdrop.naming import PARIS, to_instant
from smsdrop.reports import (
    ACK_COLUMNS,
    REPLY_COLUMNS,
    format_record,
    format_reply_date,
    format_reply_hour,
    parse_ack,
    parse_ack_tolerant,
    parse_replies,
    parse_replies_from,
    write_ack_line,
    write_reply_line,
)


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


@settings(max_examples=80, deadline=None)
@given(RECORDS, st.booleans(), st.booleans(), st.data())
def test_reading_in_pieces_equals_reading_whole(
    records: list[tuple[str, datetime, str, str]], bom: bool, lf: bool, data: st.DataObject
) -> None:
    file = reply_file(records, bom, lf)
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


def test_a_chunk_holds_arrow_rows_and_shows_the_same_to_pandas() -> None:
    chunk = parse_replies_from(b"+33611111111;20261201;1030;STOP;C1\r\n", "STOP.csv", 0)
    assert isinstance(chunk.table, pa.Table)
    assert chunk.frame.equals(chunk.table.to_pandas(types_mapper=pd.ArrowDtype))
    assert dict(chunk.frame.dtypes) == REPLY_DTYPES
    tolerant = parse_ack_tolerant(SPEC_ACK, "ACK.csv")
    assert tolerant.frame.equals(parse_ack(SPEC_ACK, "ACK.csv"))
