"""Tolerant reading, the loaders' mode: every record of a report loaded or set aside
(quarantined, masked), never an error on the content, whatever the bytes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_samples import (
    RECORDS,
    REPLY_DTYPES,
    WHEN,
    WHEN_0,
    reply_file,
)

from smsdrop.errors import InputError
from smsdrop.reports import (
    ACK_COLUMNS,
    BOM,
    MAX_OPEN_LINES,
    MAX_RECORD_BYTES,
    SPLIT_BYTES,
    Chunk,
    clean_bytes,
    format_reply_date,
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


def test_a_stray_quote_closed_by_a_truncated_line_does_not_swallow_a_valid_one() -> None:
    """Found by the property test: line 1 opens a quote, line 5's quote closes it with text
    glued after it (``"0``, not RFC 4180); pyarrow reads the three lines as one valid
    record, hiding K1. Such a record over several lines is set aside by its first line."""
    lines = [
        b'+33610000000;20260101;010000;"\r\n',
        b"+33610000000;20260101;010000;;K1\r\n",
        b'+33610000000;20260101;010000;"0;\r\n',
    ]
    data = lines[0] + b"\r\n" + lines[1] + b"\r\n" + lines[2] + b"\r\n"
    for final in (True, False):
        chunk = _tolerant(data, final=final)
        assert chunk.frame["idremote"].tolist() == ["K1"]
        assert [(q.line, q.field) for q in chunk.quarantined] == [(1, "MESSAGE"), (5, "MESSAGE")]
        assert "text after a closing quote" in chunk.quarantined[0].reason
        assert chunk.next_offset == len(data)


def test_a_message_over_several_lines_is_still_one_record() -> None:
    """RFC 4180: a quoted field may hold line breaks (a reply typed on two lines) and
    doubled quotes; text glued after a closing quote on one line is read as pyarrow does."""
    multi = b'+33612345601;20261201;103000;"Stop\r\nsvp ""merci""";K1\r\n'
    glued = b'+33612345602;20261201;103000;"Stop"svp;K2\r\n'
    chunk = _tolerant(multi + glued, final=True)
    assert chunk.frame["message"].tolist() == ['Stop\r\nsvp "merci"', "Stopsvp"]
    assert not chunk.quarantined
    glued_over_lines = b'+33612345603;20261201;103000;"Stop\r\nsvp"x;K3\r\n'
    chunk = _tolerant(glued_over_lines + glued, final=True)
    assert chunk.frame["idremote"].tolist() == ["K2"]
    first, second = chunk.quarantined  # line 2 read again: two fields, HOUR missing
    assert (first.line, first.field, second.line, second.field) == (1, "MESSAGE", 2, "HOUR")
    assert first.reason.startswith("text after a closing quote")


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
    file = _mutate(reply_file(records, bom=False, lf=False), mutations)
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
