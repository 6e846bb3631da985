"""The ``smsdrop`` command as a user runs it: real processes, exit codes, JSON shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from smsdrop import naming, synthetic, windows

GOOD = b"A1;+33612345678;Shop;Bonjour\r\nA2;+33787798753;Shop;Salut; toi\r\n"


def smsdrop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smsdrop", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_segments_json() -> None:
    result = smsdrop("segments", "a" * 159 + "€", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {
        "encoding": "gsm7",
        "gsm7": True,
        "septets": 161,
        "ucs2_units": 160,
        "segments": 2,
        "non_gsm": [],
    }
    out = json.loads(smsdrop("segments", "Crème brûlée", "--json").stdout)
    assert out["encoding"] == "ucs2" and out["septets"] is None and out["non_gsm"] == ["û"]


def test_window_json() -> None:
    result = smsdrop("window", "--country", "FR", "--at", "2026-11-29T12:00:00+01:00", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {
        "allowed": False,
        "next": "2026-11-30T08:00:00+01:00",
        "reason": "Sunday",
    }
    ok = json.loads(smsdrop("window", "--at", "2026-11-30T21:59:00+01:00", "--json").stdout)
    assert ok["allowed"] is True and ok["next"] == "2026-11-30T21:59:00+01:00"


def test_usage_errors_exit_2_without_traceback() -> None:
    for args in (["window", "--at", "2026-11-29T12:00:00"], ["nope"], ["check"]):
        result = smsdrop(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr and "error" in result.stderr


def test_check_good_and_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "SEND-12345-20261201-1000-promo.csv"
    good.write_bytes(GOOD.replace(b"Salut; toi", b'"Salut; toi"'))
    result = smsdrop("check", str(good), "--json")
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["files"][0] == {
        "file": str(good),
        "ok": True,
        "records": 2,
        "problems": [],
    }

    bad = tmp_path / "SEND12345-20261201-1000-promo.csv"
    bad.write_bytes(
        b"IDREMOTE;MSISDN;OADC;MSG\r\n"
        b"A1;+33612345678;Shop;ok\r\n"
        b"A-2;0612345678;Shop;ok\r\n"
        b"A3;+33612345678;Shop;ok\r\n"
        b"A4;+33612345679;Sh\xc3\xb4p;\r\n"
        b"A5;+33612345670;Shop\r\n"
        b"A6;+33140000000;Shop;cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e\r\n"
    )
    result = smsdrop("check", str(bad), "--json")
    assert result.returncode == 1
    problems = json.loads(result.stdout)["files"][0]["problems"]
    got = [(p["record"], p["field"], p["reason"]) for p in problems]
    assert got == [
        (None, None, "NAME_INVALID"),
        (1, "MSISDN", "MSISDN_INVALID"),
        (3, "IDREMOTE", "IDREMOTE_INVALID"),
        (4, "MSISDN", "MSISDN_DUPLICATE"),
        (5, "OADC", "OADC_INVALID"),
        (6, None, "RECORD_MALFORMED"),
        (7, "MSISDN", "MSISDN_NOT_MOBILE"),
    ]
    assert "header" in problems[1]["detail"]
    text = smsdrop("check", str(bad)).stdout
    assert f"{bad}: record 3 (line 3) field IDREMOTE: IDREMOTE_INVALID" in text
    assert "0612345678" not in text and "33612345678" not in text


def test_check_non_gsm_depends_on_policy(tmp_path: Path) -> None:
    path = tmp_path / "SEND-12345-20261201-1000-promo.csv"
    path.write_text("A1;+33612345678;Shop;crème brûlée\r\n", encoding="utf-8")
    assert smsdrop("check", str(path)).returncode == 1
    assert smsdrop("check", str(path), "--encoding-policy", "ucs2").returncode == 0


def test_check_bad_encoding_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "SEND-12345-20261201-1000-promo.csv"
    path.write_bytes(b"A1;+33612345678;Shop;ok\r\nA2;+33612345679;Shop;\xe9t\xe9\r\n")
    result = smsdrop("check", str(path))
    assert result.returncode == 1 and "ENCODING_INVALID" in result.stdout
    assert smsdrop("check", str(path), "--file-encoding", "latin-1").returncode == 0
    missing = smsdrop("check", str(tmp_path / "SEND-12345-20261201-1000-x.csv"))
    assert missing.returncode == 1 and "FILE_UNREADABLE" in missing.stdout


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_prepare_end_to_end(tmp_path: Path, fmt: str) -> None:
    # A send time ahead (a past one plans from now): the first allowed minute after 2 days.
    soon = datetime.now(naming.PARIS).replace(hour=10, minute=0, second=0, microsecond=0)
    send_at = windows.next_allowed(soon + timedelta(days=2)).astimezone(naming.PARIS)
    frame = synthetic.audience(5_000)
    audience = synthetic.write_audience(frame, tmp_path / f"a.{fmt}")
    result = smsdrop(
        "prepare",
        str(audience),
        "--service-id",
        "12345",
        "--campaign",
        "promo",
        "--sender",
        "Shop",
        "--message",
        "Bonjour {first_name} !",
        "--encoding-policy",
        "transliterate",
        "--send-at",
        send_at.isoformat(),
        "--out",
        str(tmp_path / "o"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["recipients"] == 5_000 == summary["valid"] + summary["rejected"]
    assert summary["files"][0]["name"] == f"SEND-12345-{send_at:%Y%m%d-%H%M}-promo.csv"
    assert summary["encodings"] == {"gsm7": summary["valid"]}
    check = smsdrop("check", str(tmp_path / "o" / summary["files"][0]["name"]))
    assert check.returncode == 0, check.stdout
    human = smsdrop(
        "prepare",
        str(audience),
        "--service-id",
        "12345",
        "--campaign",
        "promo",
        "--sender",
        "Shop",
        "--message",
        "Bonjour {first_name} !",
        "--out",
        str(tmp_path / "p"),
    )
    assert "MSG_NOT_GSM" in human.stdout  # names like Françoise need a policy


def test_prepare_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    result = smsdrop(
        "prepare",
        str(tmp_path / "none.csv"),
        "--service-id",
        "12345",
        "--campaign",
        "p",
        "--sender",
        "S",
        "--message",
        "m",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip() == f"smsdrop prepare: {tmp_path / 'none.csv'}: no such audience file"
    )
    bad = tmp_path / "a.csv"
    bad.write_text("idremote,msisdn\nA,0612345678\n")
    result = smsdrop(
        "prepare",
        str(bad),
        "--service-id",
        "1234",
        "--campaign",
        "p",
        "--sender",
        "S",
        "--message",
        "m",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "SERVICEID" in result.stderr


def test_prepare_ragged_or_undecodable_csv_names_file_and_line(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("idremote,msisdn\nA,0612345678\nB,0612345679,extra\n")
    args = ["--service-id", "12345", "--campaign", "p", "--sender", "S", "--message", "m"]
    result = smsdrop("prepare", str(ragged), *args, "--out", str(tmp_path / "o"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"smsdrop prepare: {ragged}:3: 3 fields where the header has 2"
    )
    assert "0612345679" not in result.stderr
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"idremote,msisdn\nA,06\xff12345678\n")
    result = smsdrop("prepare", str(binary), *args, "--out", str(tmp_path / "p"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert str(binary) in result.stderr and "0612345678" not in result.stderr
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = smsdrop("prepare", str(ragged), *args, "--out", str(blocked / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
