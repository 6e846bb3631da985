"""The upload contract, streamed: each way a SEND file can be broken is counted exactly,
whichever batches the file is cut into (batches of 2–3 rows here, so every file spans
several great-expectations runs)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from smsdrop import upload_contract
from smsdrop.csvfile import encode_records
from smsdrop.errors import InputError
from smsdrop.record_rules import Rules
from smsdrop.upload_contract import ContractResult, check_files

Row = tuple[str, str, str, str]
NO_OPTOUTS = pd.Series([], dtype="string")
#: Each great-expectations check, as the result names it, and the contract's own.
GX_CHECKS = {
    ("expect_column_values_to_not_be_null", "msisdn"),
    ("expect_column_values_to_match_regex", "msisdn"),
    ("expect_column_values_to_be_unique", "msisdn"),
    ("expect_column_values_to_not_be_in_set", "msisdn"),
    ("expect_column_values_to_match_regex", "idremote"),
    ("expect_column_values_to_match_regex", "oadc"),
    ("expect_column_values_to_not_be_null", "msg"),
    ("expect_column_values_to_be_between", "segments"),
}
OWN_CHECKS = {("expect_four_fields", None), ("expect_msisdn_unique_within_file", "msisdn")}


def good_rows(count: int, start: int = 0) -> list[Row]:
    return [(f"C{i}", f"+336123456{i:02d}", "SHOP", "Hello") for i in range(start, start + count)]


def send_file(tmp_path: Path, name: str, rows: list[Row]) -> Path:
    frame = pd.DataFrame(rows, columns=["idremote", "msisdn", "oadc", "msg"])
    path = tmp_path / name
    path.write_bytes(encode_records(pa.Table.from_pandas(frame, preserve_index=False)))
    return path


def broken(result: ContractResult) -> dict[tuple[str, str, str | None], int]:
    return {(e["file"], e["expectation"], e["column"]): e["unexpected_count"]
            for e in result.failures}  # fmt: skip


def test_a_good_file_over_several_batches_passes_with_every_row_counted(tmp_path: Path) -> None:
    path = send_file(tmp_path, "a.csv", good_rows(7))
    result = check_files([path], Rules(), NO_OPTOUTS, batch_rows=3)  # batches of 3, 3, 1
    assert result.success and result.files == 1 and result.rows == 7
    per_file = {(e["expectation"], e["column"]): e for e in result.expectations if e["file"] != "*"}
    assert set(per_file) == GX_CHECKS | OWN_CHECKS
    assert all(e["element_count"] == 7 and e["unexpected_count"] == 0 for e in per_file.values())
    across = [e for e in result.expectations if e["file"] == "*"]
    assert [(e["expectation"], e["element_count"]) for e in across] == [
        ("expect_msisdn_unique_across_files", 7)
    ]


# Each corruption: the rows (7, batches of 3), the opt-outs, the rules, what fails and how often.
CORRUPTIONS = {
    "bad E.164": (
        {2: ("C2", "0612345602", "SHOP", "Hello")},
        [], Rules(), {("expect_column_values_to_match_regex", "msisdn"): 1},
    ),
    "no number": (
        {4: ("C4", "", "SHOP", "Hello")},
        [], Rules(), {("expect_column_values_to_not_be_null", "msisdn"): 1},
    ),
    "duplicate inside a batch": (
        {1: ("C1", "+33612345600", "SHOP", "Hello")},
        [], Rules(),
        {("expect_column_values_to_be_unique", "msisdn"): 2,
         ("expect_msisdn_unique_within_file", "msisdn"): 2},
    ),
    "duplicate across batches": (  # rows 0 and 4: batches 1 and 2; only the exact check sees it
        {4: ("C4", "+33612345600", "SHOP", "Hello")},
        [], Rules(), {("expect_msisdn_unique_within_file", "msisdn"): 2},
    ),
    "an opt-out that arrived": (
        {}, ["+33612345605", "+33699999999"], Rules(),
        {("expect_column_values_to_not_be_in_set", "msisdn"): 1},
    ),
    "bad idremote": (
        {3: ("C-3", "+33612345603", "SHOP", "Hello"), 6: ("", "+33612345606", "SHOP", "Hello")},
        [], Rules(), {("expect_column_values_to_match_regex", "idremote"): 2},
    ),
    "bad oadc": (
        {0: ("C0", "+33612345600", "SHOP-PARIS-12", "Hello")},
        [], Rules(), {("expect_column_values_to_match_regex", "oadc"): 1},
    ),
    "null msg": (
        {5: ("C5", "+33612345605", "SHOP", "")},
        [], Rules(), {("expect_column_values_to_not_be_null", "msg"): 1},
    ),
    "too many segments": (
        {1: ("C1", "+33612345601", "SHOP", "x" * 161), 2: ("C2", "+33612345602", "SHOP", "ê" * 71)},
        [], Rules(), {("expect_column_values_to_be_between", "segments"): 2},
    ),
    "too many segments for long SMS": (
        {1: ("C1", "+33612345601", "SHOP", "x" * 766), 2: ("C2", "+33612345602", "SHOP", "x" * 765)},
        [], Rules(long_sms=True), {("expect_column_values_to_be_between", "segments"): 1},
    ),
}  # fmt: skip


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_each_corruption_is_counted_exactly_once_per_row(tmp_path: Path, corruption: str) -> None:
    changes, optouts, rules, expected = CORRUPTIONS[corruption]
    rows = good_rows(7)
    for index, row in changes.items():
        rows[index] = row
    path = send_file(tmp_path, "f.csv", rows)
    result = check_files([path], rules, pd.Series(optouts, dtype="string"), batch_rows=3)
    assert not result.success
    assert broken(result) == {("f.csv", *key): count for key, count in expected.items()}
    assert all(e["element_count"] == 7 for e in result.expectations)
    assert "+336" not in str(result.as_dict()) and "+336" not in result.describe_failures()


def test_a_number_in_two_files_is_found_across_files_only(tmp_path: Path) -> None:
    first = send_file(tmp_path, "a.csv", good_rows(5))
    second = send_file(tmp_path, "b.csv", good_rows(5, start=4))  # +33612345604 in both
    third = send_file(tmp_path, "c.csv", good_rows(3, start=3))  # 03, 04 and 05 again
    result = check_files([first, second, third], Rules(), NO_OPTOUTS, batch_rows=2)
    # 03 in 2 files, 04 in 3, 05 in 2: one count per file beyond the first
    assert broken(result) == {("*", "expect_msisdn_unique_across_files", "msisdn"): 4}
    assert result.rows == 13 and result.files == 3


def test_a_record_without_four_fields_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    lines = [f"{r[0]};{r[1]};{r[2]};{r[3]}" for r in good_rows(5)]
    lines[3] = "C3;+33612345603;SHOP"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    result = check_files([path], Rules(), NO_OPTOUTS, batch_rows=2)
    assert broken(result) == {("f.csv", "expect_four_fields", None): 1}
    four = next(e for e in result.expectations if e["expectation"] == "expect_four_fields")
    assert (four["element_count"], result.rows) == (5, 4)


def test_the_counts_do_not_depend_on_the_batches(tmp_path: Path) -> None:
    """Every count but great-expectations' per-batch uniqueness is the same whether a file
    is one batch or many."""
    rows = good_rows(11)
    rows[2] = ("C2", "0612345602", "SHOP", "x" * 200)
    rows[7] = ("C 7", "+33612345601", "", "Hello")
    rows[9] = ("C9", "+33612345601", "SHOP", "")
    paths = [send_file(tmp_path, "a.csv", rows), send_file(tmp_path, "b.csv", good_rows(4))]
    optouts = pd.Series(["+33612345603", "+33612345610"])

    def counts(batch_rows: int) -> dict:
        result = check_files(paths, Rules(), optouts, batch_rows=batch_rows)
        return {(e["file"], e["expectation"], e["column"]): (e["element_count"],
                e["unexpected_count"]) for e in result.expectations
                if e["expectation"] != "expect_column_values_to_be_unique"}  # fmt: skip

    whole = counts(1000)
    assert whole[("a.csv", "expect_msisdn_unique_within_file", "msisdn")] == (11, 3)
    assert whole[("*", "expect_msisdn_unique_across_files", "msisdn")] == (15, 3)
    for batch_rows in (1, 2, 3, 5):
        assert counts(batch_rows) == whole


def test_batches_hold_at_most_batch_rows_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_contract, "READ_BLOCK", 64)  # ~2 records a block
    path = send_file(tmp_path, "f.csv", good_rows(23))
    batches = list(upload_contract._Batches(path, "utf-8", 5))
    assert [b.num_rows for b in batches] == [5, 5, 5, 5, 3]
    assert pa.concat_tables(batches).column("idremote").to_pylist() == [f"C{i}" for i in range(23)]


def test_an_empty_file_passes_with_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    result = check_files([path], Rules(), NO_OPTOUTS, batch_rows=3)
    assert result.success and result.rows == 0
    assert {(e["expectation"], e["column"]) for e in result.expectations if e["file"] != "*"} == (
        GX_CHECKS | OWN_CHECKS
    )


def test_a_file_in_another_encoding_is_read_as_that_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(
        "C1;+33612345601;SHOP;Réduction\r\nC2;+33612345602;SHOP;été\r\n".encode("latin-1")
    )
    assert check_files([path], Rules(), NO_OPTOUTS, encoding="latin-1", batch_rows=1).success
    with pytest.raises(InputError, match="not a readable SEND file"):
        check_files([path], Rules(), NO_OPTOUTS, batch_rows=1)  # not UTF-8


def test_great_expectations_fingerprints_no_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contract turns off great-expectations' fingerprint of each batch (~1.5 s a
    million rows). An upgrade that renamed ``HASH_THRESHOLD`` would make the contract
    slower without a word: this test says so."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    calls: list[int] = []
    real = pd.util.hash_pandas_object
    monkeypatch.setattr(
        pd.util, "hash_pandas_object", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    path = send_file(tmp_path, "a.csv", good_rows(5))
    threshold = engine.HASH_THRESHOLD
    assert check_files([path], Rules(), NO_OPTOUTS, batch_rows=2).success
    assert calls == [] and engine.HASH_THRESHOLD == threshold  # none, and restored after
    monkeypatch.setattr(upload_contract, "_no_fingerprints", nullcontext)  # the control
    assert check_files([path], Rules(), NO_OPTOUTS, batch_rows=2).success
    assert len(calls) == 3, calls  # one per batch (2, 2, 1 rows)
