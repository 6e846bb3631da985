"""Hostile audience and opt-out files: each class is read right or refused with file and line.

Every accepted file must account for each of its rows: sent or rejected, never swallowed.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsdrop.cli import main
from smsdrop.csvfile import read_records
from smsdrop.errors import InputError
from smsdrop.prepare import load_optouts, prepare, read_audience
from tests.campaigns import campaign_spec

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # a Saturday, inside the French window
CAMPAIGN = campaign_spec(message="Bonjour {first_name}")


def run(path: Path, out: Path, **kwargs):
    return prepare(path, CAMPAIGN, out, now=NOW, **kwargs)


def sent(out: Path) -> pd.DataFrame:
    tables = [read_records(p.read_bytes(), p.name).table.to_pandas() for p in out.glob("SEND-*")]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["msg"])


def rejects(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)


def refused(path: Path, out: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        run(path, out)
    assert not list(out.glob("SEND-*")) if out.exists() else True
    return caught.value


# --- audience CSVs ----------------------------------------------------------------------


def test_unterminated_quote_is_refused_not_swallowed(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        b'idremote,msisdn,first_name\nA1,0612345678,Ann\nA2,0612345679,"Bob\nA3,0612345670,Cy\n'
    )
    error = refused(path, tmp_path / "o")
    assert (error.file, error.line) == (str(path), 3)
    assert "never closed" in error.reason


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'A1,0612345678,O"Brien\n', "quote inside an unquoted field"),
        (b'A1,0612345678,"Ann"ie\n', "text after a closing quote"),
    ],
)
def test_stray_quotes_are_refused_with_their_line(tmp_path, body, kind) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"idremote,msisdn,first_name\nA0,0612345670,Zoe\n" + body)
    error = refused(path, tmp_path / "o")
    assert error.line == 3 and kind in error.reason


def test_quoted_fields_that_are_rfc4180_are_read(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        b'idremote,msisdn,first_name\nA1,0612345678,"Ann, ""Nan"""\nA2,0612345679,""\n'
    )
    summary = run(path, tmp_path / "o")
    assert sent(tmp_path / "o")["msg"].tolist() == ['Bonjour Ann, "Nan"']
    assert summary.rejects_by_reason == {"MSG_TEMPLATE_FIELD": 1}


def test_lone_cr_line_ends_are_read_and_lines_counted(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"idremote,msisdn,first_name\rA1,0612345678,Ann\rA2,0612345679,Bob\r")
    summary = run(path, tmp_path / "o")
    assert summary.recipients == 2 == summary.valid
    path.write_bytes(path.read_bytes() + b"A3,0612345670,Cy,extra\r")
    error = refused(path, tmp_path / "p")
    assert error.line == 4 and "4 fields where the header has 3" in error.reason


def test_header_names_are_trimmed_and_case_insensitive(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b" IdRemote ; MSISDN ;First_Name \nA1;0612345678;Ann\n")
    run(path, tmp_path / "o")
    assert sent(tmp_path / "o")["msg"].tolist() == ["Bonjour Ann"]


def test_duplicate_columns_are_refused_when_needed_ignored_otherwise(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"idremote,msisdn,MSISDN,first_name\nA1,0612345678,x,Ann\n")
    error = refused(path, tmp_path / "o")
    assert "columns 2 and 3" in error.reason and error.field == "msisdn"
    path.write_bytes(b"idremote,msisdn,note,note,first_name\nA1,0612345678,x,y,Ann\n")
    assert run(path, tmp_path / "p").valid == 1


@pytest.mark.parametrize(
    ("data", "line", "guess"),
    [
        (
            "idremote,msisdn,first_name\nA1,0612345678,Ann\nA2,0612345679,Renée\n".encode(
                "latin-1"
            ),
            3,
            "Latin-1",
        ),
        ("idremote,msisdn,first_name\nA1,0612345678,Ann\n".encode("utf-16"), 1, "UTF-16"),
        ("idremote,msisdn,first_name\nA1,0612345678,Ann\n".encode("utf-16-le"), 1, "UTF-16"),
    ],
)
def test_wrong_encodings_name_the_line_and_the_expected_encoding(tmp_path, data, line, guess):
    path = tmp_path / "a.csv"
    path.write_bytes(data)
    error = refused(path, tmp_path / "o")
    assert error.line == line and "UTF-8 expected" in error.reason and guess in error.reason


def test_a_utf8_bom_is_read(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbfidremote,msisdn,first_name\nA1,0612345678,Ann\n")
    assert run(path, tmp_path / "o").valid == 1


def test_text_that_looks_like_null_is_a_value(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        b"idremote,msisdn,first_name\nA1,0612345678,NULL\nA2,0612345679,nan\n"
        b"A3,0612345670,NA\nA4,NA,Ann\nA5,0612345671,\n"
    )
    summary = run(path, tmp_path / "o")
    assert sent(tmp_path / "o")["msg"].tolist() == ["Bonjour NULL", "Bonjour nan", "Bonjour NA"]
    assert rejects(tmp_path / "o")[["row", "reason"]].values.tolist() == [
        ["4", "MSISDN_INVALID"],
        ["5", "MSG_TEMPLATE_FIELD"],
    ]
    assert summary.recipients == 5


def test_special_files_and_endless_headers_are_refused(tmp_path) -> None:
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    assert "regular file" in refused(fifo, tmp_path / "o").reason  # and no hang
    long = tmp_path / "long.csv"
    long.write_bytes(b"x" * (1 << 20) + b"\n")
    assert "no line end" in refused(long, tmp_path / "o").reason


# --- Parquet ----------------------------------------------------------------------------


def parquet(tmp_path: Path, **columns: pa.Array) -> Path:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_float_personalisation_nan_is_missing_never_nan(tmp_path) -> None:
    path = parquet(
        tmp_path,
        idremote=pa.array(["A1", "A2", "A3"]),
        msisdn=pa.array(["0612345678", "0612345679", "0612345670"]),
        first_name=pa.array([1.5, float("nan"), float("inf")]),
    )
    summary = run(path, tmp_path / "o")
    assert sent(tmp_path / "o")["msg"].tolist() == ["Bonjour 1.5"]
    assert summary.rejects_by_reason == {"MSG_TEMPLATE_FIELD": 2}


def test_parquet_float_numbers_are_refused(tmp_path) -> None:
    path = parquet(
        tmp_path,
        idremote=pa.array(["A1"]),
        msisdn=pa.array([33612345678.0]),
        first_name=pa.array(["Ann"]),
    )
    error = refused(path, tmp_path / "o")
    assert error.field == "msisdn" and "float" in error.reason


def test_parquet_binary_is_text_when_utf8_refused_with_its_row_otherwise(tmp_path) -> None:
    good = parquet(
        tmp_path,
        idremote=pa.array([b"A1", b"A2"]),
        msisdn=pa.array([b"0612345678", b"0612345679"]),
        first_name=pa.array(["Zoé".encode(), None]),
    )
    summary = run(good, tmp_path / "o")
    assert summary.valid == 1 and summary.rejects_by_reason == {"MSG_TEMPLATE_FIELD": 1}
    bad = parquet(
        tmp_path,
        idremote=pa.array(["A1", "A2"]),
        msisdn=pa.array(["0612345678", "0612345679"]),
        first_name=pa.array([b"Ann", b"Ren\xe9e"]),
    )
    error = refused(bad, tmp_path / "p")
    assert error.field == "first_name" and "row 2" in error.reason and "UTF-8" in error.reason


@pytest.mark.parametrize(
    "values",
    [
        pa.array([["a", "b"]]),
        pa.array([{"x": 1}]),
        pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())),
    ],
)
def test_parquet_nested_columns_are_refused_by_name(tmp_path, values) -> None:
    path = parquet(
        tmp_path, idremote=pa.array(["A1"]), msisdn=pa.array(["0612345678"]), first_name=values
    )
    error = refused(path, tmp_path / "o")
    assert error.field == "first_name" and "only text, numbers" in error.reason


def test_parquet_integers_dates_and_dictionaries_are_text(tmp_path) -> None:
    path = parquet(
        tmp_path,
        IDREMOTE=pa.array([7, 8]),
        msisdn=pa.array(["+33612345678", "+33612345679"]).dictionary_encode(),
        first_name=pa.array([datetime(2026, 1, 2).date(), None]),
    )
    summary = run(path, tmp_path / "o")
    assert sent(tmp_path / "o")[["idremote", "msg"]].values.tolist() == [
        ["7", "Bonjour 2026-01-02"]
    ]
    assert summary.recipients == 2 == summary.valid + summary.rejected


# --- opt-out files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"msisdn\n+33612345678\n0612345679\n",
        b"+33612345678\n0612345679\n",  # no header
        b"id;MSISDN;date\n1;+33612345678;2026-01-01\n2;0612345679;2026-01-02\n",
        b"\xef\xbb\xbfphone\r\n+33612345678\r\n06 12 34 56 79\r\n",
        " Numéro \n+33612345678\n0612345679\n".encode(),
        b"numero,date\r+33612345678,x\r0612345679,y\r",
    ],
)
def test_optout_files_are_read_as_text(tmp_path, data) -> None:
    path = tmp_path / "stop.csv"
    path.write_bytes(data)
    read = load_optouts(path)
    assert sorted(read.numbers) == ["+33612345678", "+33612345679"]
    assert (read.entries, read.unreadable) == (2, 0)


def test_optout_parquet_integers_read_floats_refused(tmp_path) -> None:
    path = tmp_path / "stop.parquet"
    pq.write_table(pa.table({"msisdn": pa.array([612345678], pa.int64())}), path)
    assert load_optouts(path).numbers.tolist() == ["+33612345678"]
    for name in ("msisdn", "Phone", "anything"):
        pq.write_table(pa.table({name: pa.array([33612345678.0])}), path)
        with pytest.raises(InputError, match="float"):
            load_optouts(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"name,email\nx,y\n", "needs a number column"),
        (b"msisdn,phone\n+33612345678,+33612345679\n", "several number columns"),
        (b"msisdn\n+33612345678\n\xe9\n", "UTF-8 expected"),
        (b'msisdn\n"+33612345678\n', "never closed"),
    ],
)
def test_optout_files_that_cannot_be_read_are_refused(tmp_path, data, message) -> None:
    path = tmp_path / "stop.csv"
    path.write_bytes(data)
    with pytest.raises(InputError, match=message):
        load_optouts(path)


def test_unreadable_optout_entries_are_counted_and_reported(tmp_path, capsys) -> None:
    stop = tmp_path / "stop.csv"
    stop.write_bytes(b"msisdn,source\n+33612345678,a\nnot a number,b\n,c\n0612345679,d\n")
    read = load_optouts(stop)
    assert (read.entries, read.unreadable, read.unreadable_records) == (4, 2, [2, 3])
    audience = tmp_path / "a.csv"
    audience.write_bytes(
        b"idremote,msisdn,first_name\nA1,0612345678,Ann\nA2,0612345670,Bob\nA3,0612345679,Cy\n"
    )
    args = ["prepare", str(audience), "--service-id", "12345", "--campaign", "p", "--sender"]
    args += ["Shop", "--message", "Hi {first_name}", "--optouts", str(stop), "--json"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["opted_out"] == 2 and out["valid"] == 1
    assert out["optout_file"]["unreadable"] == 2 and out["optout_file"]["entries"] == 4
    assert any("2 of 4 entries are not phone numbers" in w for w in out["warnings"])
    human = [a for a in args if a != "--json"]
    assert main([*human, "--out", str(tmp_path / "h")]) == 0
    text = capsys.readouterr().out
    assert "opt-out file 4 entries, 2 numbers, 2 not numbers" in text
    assert "records 2, 3; header not counted" in text and "0612345679" not in text


# --- every row accounted: property tests ------------------------------------------------

TOKENS = st.sampled_from(
    ["A1", "B2", "0612345678", "+33612345679", "NA", "", " ", "é", '"', '""', ",", ";", "x"]
)
FIELD = st.lists(TOKENS, max_size=3).map("".join)
LINE_END = st.sampled_from(["\n", "\r\n", "\r"])


def strict_records(data: bytes, delimiter: str) -> int | None:
    """Non-empty records of ``data`` by Python's csv module (None: it refuses them)."""
    try:
        text = data.decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        return sum(1 for record in reader if record) - 1
    except (csv.Error, UnicodeDecodeError):
        return None


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.lists(FIELD, min_size=1, max_size=4), max_size=6),
    LINE_END,
    st.sampled_from([",", ";"]),
    st.sampled_from([b"", b"\xef\xbb\xbf", b"\xe9", b'"']),
)
def test_any_csv_is_refused_or_every_row_accounted(tmp_path, rows, end, delimiter, junk):
    path = tmp_path / "a.csv"
    header = delimiter.join(["idremote", "msisdn", "first_name"])
    body = end.join(delimiter.join(row) for row in rows)
    data = (header + end + body).encode()
    data = junk + data if junk == b"\xef\xbb\xbf" else data + junk
    path.write_bytes(data)
    out = tmp_path / "o"
    try:
        summary = run(path, out)
    except InputError as error:
        assert error.file == str(path)
        return
    assert summary.recipients == summary.valid + summary.rejected
    assert summary.valid == len(sent(out)) and summary.rejected == len(rejects(out))
    # Nothing swallowed: as many rows as a strict RFC 4180 reader finds records.
    expected = strict_records(data, delimiter)
    if expected is not None:
        assert summary.recipients == expected


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=60), st.sampled_from(["a.csv", "a.parquet"]))
def test_readers_on_any_bytes_give_frames_or_input_errors(tmp_path, data, name) -> None:
    path = tmp_path / name
    path.write_bytes(b"idremote,msisdn\n" + data if name.endswith(".csv") else data)
    try:
        for frame in read_audience(path, ["idremote", "msisdn"], 3):
            assert list(frame.columns) == ["idremote", "msisdn"]
    except InputError as error:
        assert error.file == str(path)
    try:
        load_optouts(path)
    except InputError as error:
        assert error.file == str(path)


def test_headerless_optouts_with_more_columns_and_numbers_never_shown(tmp_path) -> None:
    path = tmp_path / "stop.csv"
    path.write_bytes(b"+33 6 12 34 56 78;2026-01-01\n0612345679;2026-01-02\n")
    assert sorted(load_optouts(path).numbers) == ["+33612345678", "+33612345679"]
    path.write_bytes(b"Dupont;+33612345678\nMartin;0612345679\n")
    with pytest.raises(InputError) as caught:
        load_optouts(path)
    assert "12345678" not in str(caught.value) and "+33*" in str(caught.value)


def test_empty_files_and_control_characters_in_names(tmp_path, capsys) -> None:
    empty = tmp_path / "a.csv"
    empty.write_bytes(b"")
    assert "first line is empty" in refused(empty, tmp_path / "o").reason
    hostile = tmp_path / "b.csv"
    hostile.write_bytes(b"idremote,\x1b[2Jmsisdn\nA1,0612345678\n")
    args = ["prepare", str(hostile), "--service-id", "12345", "--campaign", "p", "--sender", "S"]
    assert main([*args, "--message", "Hi", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2Jmsisdn" in err


PARQUET_COLUMNS = st.sampled_from(
    [
        pa.array(["0612345678", "+33612345679", "NA"]),
        pa.array([b"0612345678", b"\xff", None]),
        pa.array([612345678, 612345679, None], pa.int64()),
        pa.array([1.5, float("nan"), None]),
        pa.array([True, False, None]),
        pa.array([[1], [], None]),
        pa.array([{"a": 1}, None, {"a": 2}]),
        pa.array([None, None, None], pa.null()),
        pa.array(["x", "y", "x"]).dictionary_encode(),
        pa.array([datetime(2026, 1, 1), None, datetime(2026, 1, 2)], pa.timestamp("s", "UTC")),
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(PARQUET_COLUMNS, PARQUET_COLUMNS, PARQUET_COLUMNS)
def test_any_parquet_types_are_refused_or_every_row_accounted(tmp_path, idremote, msisdn, name):
    path = parquet(tmp_path, idremote=idremote, msisdn=msisdn, first_name=name)
    out = tmp_path / "o"
    try:
        summary = run(path, out)
    except InputError as error:
        assert error.file == str(path) and error.field in ("idremote", "msisdn", "first_name")
        return
    assert summary.recipients == 3 == summary.valid + summary.rejected
    assert summary.valid == len(sent(out)) and summary.rejected == len(rejects(out))
    assert not sent(out)["msg"].str.contains("nan|None", regex=True).any()
