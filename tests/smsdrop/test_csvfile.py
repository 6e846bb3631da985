"""SEND file writing and reading: RFC 4180 with `;`, quoting only when needed."""

from __future__ import annotations

import csv
import hashlib
import io

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdrop.csvfile import SendFileWriter, encode_records, format_record, read_records
from smsdrop.errors import InputError

SPEC_LINE = (
    "VSQR0339;+33787798753;Logement; 4P 79m2 3ème étage Imm ancien 2Chbres Volumes vue "
    "Parfait état http://www.URL.com/fr/ref-VSQR0339 "
)


def table(rows: list[tuple[str, str, str, str]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    return pa.table(
        {
            name: pa.array(list(col), pa.string())
            for name, col in zip(("idremote", "msisdn", "oadc", "msg"), columns, strict=True)
        }
    )


def test_spec_example_line_is_written_byte_for_byte() -> None:
    row = tuple(SPEC_LINE.split(";", 3))
    assert encode_records(table([row])) == (SPEC_LINE + "\r\n").encode()


def test_quotes_only_fields_that_need_it() -> None:
    rows = [
        ("A1", "+33612345678", "Shop", "plain"),
        ("A2", "+33612345678", "Shop", "semi;colon"),
        ("A3", "+33612345678", "Shop", 'say "hi"'),
        ("A4", "+33612345678", "Shop", "two\nlines"),
        ("A5", "+33612345678", "Shop", "cr\rhere"),
    ]
    assert encode_records(table(rows)).split(b"\r\n")[:5] == [
        b"A1;+33612345678;Shop;plain",
        b'A2;+33612345678;Shop;"semi;colon"',
        b'A3;+33612345678;Shop;"say ""hi"""',
        b'A4;+33612345678;Shop;"two\nlines"',
        b'A5;+33612345678;Shop;"cr\rhere"',
    ]


def test_line_end_is_configurable() -> None:
    assert encode_records(table([("A", "+1", "S", "m")]), "\n") == b"A;+1;S;m\n"


def test_nulls_are_refused() -> None:
    with pytest.raises(ValueError, match="msg"):
        encode_records(
            pa.table(
                {
                    "idremote": ["A"],
                    "msisdn": ["+1"],
                    "oadc": ["S"],
                    "msg": pa.array([None], pa.string()),
                }
            )
        )


hostile = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
) | st.sampled_from([";", '"', '""', "\r\n", "\n", "\r", 'a;b"c\nd', "😀 €", " "])


@given(st.lists(st.tuples(hostile, hostile, hostile, hostile), min_size=1, max_size=30))
def test_one_record_at_a_time_writes_the_same_bytes_as_whole_columns(rows) -> None:
    # The dialect has one definition: the reports' per-record writer agrees with SEND files'.
    assert b"".join(format_record(list(row)) for row in rows) == encode_records(table(rows))


@given(st.lists(st.tuples(hostile, hostile, hostile, hostile), min_size=1, max_size=30))
def test_writer_reader_round_trip_with_hostile_text(rows) -> None:
    data = encode_records(table(rows))
    parsed = read_records(data, "x.csv")
    assert not parsed.malformed
    got = parsed.table.select(["idremote", "msisdn", "oadc", "msg"]).to_pylist()
    assert [tuple(r.values()) for r in got] == rows
    assert parsed.table.column("record").to_pylist() == list(range(1, len(rows) + 1))
    # An independent RFC 4180 reader agrees (the standard library's csv module).
    reader = csv.reader(io.StringIO(data.decode(), newline=""), delimiter=";")
    assert [tuple(r) for r in reader] == rows


def test_lines_and_records_are_counted_from_one_around_bad_records() -> None:
    data = b'a;b;c;d\r\nbad;line\r\n"x\r\ny";b;c;d\r\nbad2\r\nq;w;e;r\r\n'
    parsed = read_records(data, "f.csv")
    assert parsed.table.column("record").to_pylist() == [1, 3, 5]
    assert parsed.table.column("line").to_pylist() == [1, 3, 6]
    assert [(m.record, m.line, m.fields) for m in parsed.malformed] == [(2, 2, 2), (4, 5, 1)]


def test_undecodable_bytes_name_the_line() -> None:
    with pytest.raises(InputError) as caught:
        read_records(b"a;b;c;d\r\na;b;c;\xff\r\n", "bad.csv")
    assert caught.value.line == 2 and caught.value.file == "bad.csv"


def test_writer_splits_at_the_cap_and_reports_manifests(tmp_path) -> None:
    rows = [(f"ID{i}", f"+336{i:08d}", "Shop", f"hello {i}") for i in range(25)]
    writer = SendFileWriter(tmp_path, cap=10)
    writer.write(table(rows[:7]))
    writer.write(table(rows[7:]))
    manifests = writer.finish(lambda index, count: f"part{index}of{count}.csv")
    assert [(m.name, m.rows) for m in manifests] == [
        ("part0of3.csv", 10),
        ("part1of3.csv", 10),
        ("part2of3.csv", 5),
    ]
    for manifest in manifests:
        data = (tmp_path / manifest.name).read_bytes()
        assert manifest.bytes == len(data)
        assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    joined = b"".join((tmp_path / m.name).read_bytes() for m in manifests)
    assert joined == encode_records(table(rows))
    assert sorted(p.name for p in tmp_path.iterdir()) == [m.name for m in manifests]


def test_writer_other_encoding_and_unencodable_text(tmp_path) -> None:
    writer = SendFileWriter(tmp_path, encoding="iso-8859-1")
    writer.write(table([("A", "+33612345678", "S", "été")]))
    (manifest,) = writer.finish(lambda i, n: "f.csv")
    assert manifest.rows == 1
    assert (tmp_path / "f.csv").read_bytes() == "A;+33612345678;S;été\r\n".encode("iso-8859-1")
    unencodable = table([("A", "+33612345678", "S", "ok"), ("B", "+33612345679", "S", "€")])
    # A batch is encoded in the background: its error comes with the next call.
    writer = SendFileWriter(tmp_path / "b", encoding="iso-8859-1")
    writer.write(unencodable)
    with pytest.raises(InputError, match="cannot be written in iso-8859-1") as raised:
        writer.finish(lambda i, n: "f.csv")
    assert (raised.value.line, raised.value.field) == (2, "MSG")
    writer.abort()
    assert list((tmp_path / "b").iterdir()) == []
    writer = SendFileWriter(tmp_path / "c", encoding="iso-8859-1")
    writer.write(unencodable)
    with pytest.raises(InputError, match="cannot be written in iso-8859-1"):
        writer.write(table([("C", "+33612345670", "S", "ok")]))
    writer.abort()
    assert list((tmp_path / "c").iterdir()) == []


def test_writer_refuses_a_cap_above_the_provider_limit(tmp_path) -> None:
    with pytest.raises(InputError, match="1..1000000"):
        SendFileWriter(tmp_path, cap=1_000_001)
