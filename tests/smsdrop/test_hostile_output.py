"""What ``prepare`` writes: private modes, a reused folder cleared, a BOM once per file;
and ``smsdrop check`` refusing what is not RFC 4180."""

from __future__ import annotations

import csv
import io
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsdrop.csvfile import read_records, structure_fault
from smsdrop.errors import InputError
from smsdrop.gsm import EncodingPolicy
from smsdrop.intake_check import check_file
from smsdrop.prepare import prepare
from smsdrop.record_rules import Rules
from smsdrop.spec import CampaignSpec
from tests.campaigns import campaign_spec

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def audience(tmp_path: Path, rows: int = 5) -> Path:
    path = tmp_path / "a.csv"
    lines = [f"A{i},06123456{i:02d},Zoé" for i in range(rows)]
    path.write_text("idremote,msisdn,first_name\n" + "\n".join(lines) + "\n")
    return path


def campaign(campaign_id: str = "promo", **changes) -> CampaignSpec:
    return campaign_spec(campaign_id=campaign_id, message="Bonjour {first_name}", **changes)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_output_is_private(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        out = tmp_path / "deep" / "out"
        summary = prepare(audience(tmp_path), campaign(), out, now=NOW)
    finally:
        os.umask(old)
    assert summary.files
    assert mode(out) == 0o700 and mode(out.parent) == 0o700
    written = [out / f["name"] for f in summary.files] + [out / "rejects.csv", out / "summary.json"]
    assert [mode(p) for p in written] == [0o600] * len(written)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)


def test_existing_output_files_become_private(tmp_path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "rejects.csv").write_text("old")
    (out / "rejects.csv").chmod(0o644)
    prepare(audience(tmp_path), campaign(), out, now=NOW)
    assert mode(out / "rejects.csv") == 0o600


def test_a_reused_folder_keeps_no_earlier_send_file(tmp_path) -> None:
    out = tmp_path / "o"
    first = prepare(audience(tmp_path), campaign("first"), out, now=NOW, max_records=2)
    assert len(first.files) == 3
    (out / ".part-00000.partial").write_bytes(b"crash leftovers")
    (out / "notes.txt").write_text("not ours")
    second = prepare(audience(tmp_path, rows=2), campaign("second"), out, now=NOW)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([second.files[0]["name"], "notes.txt", "rejects.csv", "summary.json"])


def test_send_files_smsdrop_did_not_write_are_refused_not_deleted(tmp_path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    foreign = out / "SEND-12345-20261201-1000-hand.csv"
    foreign.write_bytes(b"A1;+33612345678;Shop;Hi\r\n")
    with pytest.raises(InputError, match="did not write"):
        prepare(audience(tmp_path), campaign(), out, now=NOW)
    assert foreign.read_bytes() == b"A1;+33612345678;Shop;Hi\r\n"


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8-sig", b"\xef\xbb\xbf"), ("utf-16", None)])
def test_a_bom_is_written_once_per_file_not_once_per_batch(tmp_path, encoding, bom) -> None:
    out = tmp_path / "o"
    summary = prepare(
        audience(tmp_path, rows=7),
        campaign(encoding_policy=EncodingPolicy.UCS2.value),
        out,
        now=NOW,
        batch_size=2,
        max_records=5,
        file_encoding=encoding,
    )
    assert [f["rows"] for f in summary.files] == [5, 2]
    for entry in summary.files:
        data = (out / entry["name"]).read_bytes()
        text = data.decode(encoding)
        assert "\ufeff" not in text  # the decoder ate the one BOM; no other is left
        if bom:
            assert data.startswith(bom) and data.count(bom) == 1
        assert len(text.splitlines()) == entry["rows"]
        report = check_file(out / entry["name"], Rules(EncodingPolicy.UCS2), encoding=encoding)
        assert report.ok, report.problems


# --- smsdrop check: RFC 4180 only -------------------------------------------------------

GOOD = b"A1;+33612345678;Shop;Hi\r\n"


@pytest.mark.parametrize(
    ("data", "line", "kind"),
    [
        (GOOD + b'A2;+33612345679;Shop;"Hi\r\n', 2, "never closed"),
        (GOOD + b'A2;+33612345679;Shop;O"Brien\r\n', 2, "quote inside an unquoted field"),
        (GOOD + b'A2;+33612345679;Shop;"Hi" there\r\n', 2, "text after a closing quote"),
        (b"\xef\xbb\xbf" + GOOD, 1, "byte order mark"),
        (GOOD + b"A2;+33612345679;Shop;Hi\rA3;+33612345670;Shop;Hi\r\n", 2, "CR alone"),
        (GOOD + b"A2;+33612345679;Shop;Hi\n", 2, "mixes line ends"),
        (b"A2;+33612345679;Shop;Hi\n" + GOOD, 2, "mixes line ends"),
    ],
)
def test_check_refuses_what_is_not_rfc4180(tmp_path, data, line, kind) -> None:
    path = tmp_path / "SEND-12345-20261201-1000-promo.csv"
    path.write_bytes(data)
    report = check_file(path)
    assert [(p.reason, p.line) for p in report.problems] == [("CSV_INVALID", line)]
    assert kind in report.problems[0].detail


@pytest.mark.parametrize(
    "data",
    [
        GOOD + b'A2;+33612345679;Shop;"Hi;""you""\r\nand\rmore"\r\n',
        b"A1;+33612345678;Shop;Hi\nA2;+33612345679;Shop;Ho\n",
        GOOD + b'A2;+33612345679;Shop;""\r\n'.replace(b'""', b'"x"'),
    ],
)
def test_check_accepts_rfc4180_with_crlf_or_lf(tmp_path, data) -> None:
    path = tmp_path / "SEND-12345-20261201-1000-promo.csv"
    path.write_bytes(data)
    assert check_file(path).ok, check_file(path).problems


def test_check_refuses_special_files_without_hanging(tmp_path) -> None:
    fifo = tmp_path / "SEND-12345-20261201-1000-promo.csv"
    os.mkfifo(fifo)
    assert [p.reason for p in check_file(fifo).problems] == ["FILE_UNREADABLE"]


def python_strict(data: bytes) -> list[list[str]] | None:
    """Records by Python's csv module in strict mode, or None when it refuses the bytes."""
    try:
        text = data.decode("utf-8")
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True))
    except (csv.Error, UnicodeDecodeError):
        return None


PIECES = st.sampled_from(["a", ";", '"', '""', "\r\n", "\n", "\r", "é", " "])


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_structure_scan_agrees_with_a_strict_reader(text) -> None:
    data = text.encode()
    fault = structure_fault(data, ";")
    if fault is None:
        # What the scan lets through, pyarrow reads exactly as a strict RFC 4180 reader.
        records = python_strict(data)
        assert records is not None
        if "\r" not in text.replace("\r\n", ""):
            parsed = read_records(data, "x", strict=False)
            rows = parsed.table.num_rows + len(parsed.malformed)
            assert rows == len(records)  # an empty line is a (malformed) record to both
    else:
        assert 1 <= fault.line <= text.count("\n") + text.count("\r") + 1


@settings(max_examples=200, deadline=None)
@given(st.lists(PIECES, max_size=40).map("".join), st.booleans())
def test_structure_scan_does_not_depend_on_chunking(text, strict) -> None:
    data = text.encode()
    whole = structure_fault(data, ";", strict_line_ends=strict)
    for size in (1, 2, 3, 7):
        assert structure_fault(data, ";", strict_line_ends=strict, chunk_size=size) == whole


def test_an_audience_inside_the_output_folder_is_never_cleared(tmp_path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    source = audience(tmp_path)
    inside = out / "rejects.csv"
    inside.write_bytes(source.read_bytes())
    with pytest.raises(InputError, match="move it or choose another folder"):
        prepare(inside, campaign(), out, now=NOW)
    assert inside.read_bytes() == source.read_bytes()
    kept = out / "people.csv"  # another name in the same folder is fine
    kept.write_bytes(source.read_bytes())
    assert prepare(kept, campaign(), out, now=NOW).valid == 5 and kept.exists()


def test_more_files_than_names_can_tell_apart_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("smsdrop.csvfile.MAX_FILES", 2)  # 9,999 in truth
    with pytest.raises(InputError, match="more than 2 SEND files at 1 records per file"):
        prepare(audience(tmp_path, rows=3), campaign(), tmp_path / "o", now=NOW, max_records=1)
    assert not list((tmp_path / "o").glob("*.partial"))
    assert prepare(audience(tmp_path, rows=2), campaign(), tmp_path / "p", now=NOW, max_records=1)
