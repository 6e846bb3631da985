"""Hostile arguments: each gets a one-line answer and exit 1 or 2, never a traceback or exit 3."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smsdrop.cli import EXIT_PROBLEMS, EXIT_USAGE, main
from smsdrop.errors import InputError
from smsdrop.prepare import first_allowed_slot, prepare
from tests.campaigns import campaign_spec

SAT_NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def answer(args: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of the command run in this process."""
    try:
        code = main(args)
    except SystemExit as stop:  # argparse's usage errors
        code = stop.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, out, err


@pytest.fixture
def audience(tmp_path) -> Path:
    path = tmp_path / "a.csv"
    path.write_text("idremote,msisdn\nA1,0612345678\nA2,0612345679\n")
    return path


def prepare_args(audience: Path, out: Path, *extra: str) -> list[str]:
    return [
        "prepare",
        str(audience),
        "--service-id",
        "12345",
        "--campaign",
        "p",
        "--sender",
        "Shop",
        "--message",
        "Hi",
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--default-region", "ZZ"], "not a country code"),
        (["--default-region", "FRA"], "not a country code"),
        (["--batch-size", "0"], "must be 1..10,000,000, not 0"),
        (["--batch-size", "-5"], "must be 1.."),
        (["--batch-size", "1e3"], "not a whole number"),
        (["--max-records", "0"], "must be 1..1,000,000"),
        (["--max-records", "1000001"], "must be 1..1,000,000"),
        (["--window-end", "23:00"], "can only end earlier"),
        (["--window-end", "00:00"], "can only end earlier"),
        (["--window-end", "08:00"], "can only end earlier"),
        (["--window-end", "07:30"], "can only end earlier"),
        (["--window-end", "20:00:30"], "on the minute"),
        (["--file-encoding", "rot13"], "unknown file encoding"),
        (["--file-encoding", "klingon"], "unknown file encoding"),
        (["--send-at", "0001-01-01T00:00+05:00"], "out of range"),
        (["--send-at", "2026-12-01T10:00"], "no time zone"),
    ],
)
def test_prepare_argument_refusals_are_usage_errors(tmp_path, audience, capsys, extra, message):
    code, _, err = answer(prepare_args(audience, tmp_path / "o", *extra), capsys)
    assert code == EXIT_USAGE and message in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-records", "0"], "must be 1..1,000,000"),
        (["--max-records", "2000000"], "must be 1..1,000,000"),
        (["--default-region", "XX"], "not a country code"),
        (["--file-encoding", "nope"], "unknown file encoding"),
    ],
)
def test_check_argument_refusals_are_usage_errors(tmp_path, capsys, extra, message) -> None:
    path = tmp_path / "SEND-12345-20261201-1000-promo.csv"
    path.write_bytes(b"A1;+33612345678;Shop;Hi\r\n")
    code, _, err = answer(["check", str(path), *extra], capsys)
    assert code == EXIT_USAGE and message in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--country", "FRA"], "not a country code"),
        (["--country", "12"], "not a country code"),
        (["--end", "23:00"], "can only end earlier"),
        (["--end", "21:00:01"], "on the minute"),
        (["--at", "0001-01-01T00:00+05:00"], "out of range"),
    ],
)
def test_window_argument_refusals_are_usage_errors(capsys, args, message) -> None:
    at = [] if "--at" in args else ["--at", "2026-12-02T10:00+01:00"]
    code, _, err = answer(["window", *at, *args], capsys)
    assert code == EXIT_USAGE and message in err


@pytest.mark.parametrize("at", ["0001-01-01T00:00+00:00", "9999-12-31T23:59+00:00"])
def test_window_at_years_without_a_calendar_are_answered(capsys, at) -> None:
    code, _, err = answer(["window", "--at", at], capsys)
    assert code == EXIT_PROBLEMS
    assert "no public-holiday calendar for FR" in err or "out of range" in err


def test_window_country_codes_and_a_narrowed_end(capsys) -> None:
    code, out, _ = answer(
        ["window", "--country", "be", "--at", "2026-11-29T12:00Z", "--json"], capsys
    )
    assert code == 0 and json.loads(out)["allowed"] is True  # no rule known for BE
    at = "2026-12-02T20:30+01:00"
    code, out, _ = answer(["window", "--at", at, "--end", "20:00", "--json"], capsys)
    assert json.loads(out) == {
        "allowed": False,
        "next": "2026-12-03T08:00:00+01:00",
        "reason": "outside 08:00–20:00",
    }


def test_window_end_only_narrows_in_the_library_too(tmp_path, audience) -> None:
    late = campaign_spec(window_end="23:00")
    with pytest.raises(InputError, match="can only end earlier"):
        prepare(audience, late, tmp_path / "o", now=SAT_NOON)
    # 21:30 Paris with a 21:00 end goes to Monday 08:00 (never 22:30 with a 23:00 end).
    evening = datetime(2026, 11, 28, 20, 30, tzinfo=UTC)
    assert first_allowed_slot(evening, ["FR"], "21:00").isoformat() == "2026-11-30T08:00:00+01:00"


def test_batch_size_zero_is_refused_by_the_library(tmp_path, audience) -> None:
    with pytest.raises(InputError, match="batch size"):  # it used to loop forever
        prepare(audience, campaign_spec(), tmp_path / "o", batch_size=0)


def test_a_send_time_in_the_past_plans_from_now(tmp_path, audience) -> None:
    for year in (1, 2020):
        past = campaign_spec(send_at=datetime(year, 1, 1, tzinfo=UTC).isoformat())
        summary = prepare(audience, past, tmp_path / f"o{year}", now=SAT_NOON)
        assert summary.send_at == "2026-11-28T13:00:00+01:00" and summary.send_at_moved
        assert summary.requested_send_at.startswith(f"{year:04d}-01-01")


def test_a_send_time_years_ahead_is_refused(tmp_path, audience, capsys) -> None:
    far = campaign_spec(send_at=datetime(9999, 12, 31, tzinfo=UTC).isoformat())
    with pytest.raises(InputError, match="more than 366 days ahead"):
        prepare(audience, far, tmp_path / "o", now=SAT_NOON)
    code, _, err = answer(
        prepare_args(audience, tmp_path / "p", "--send-at", "9999-12-31T23:59+00:00"), capsys
    )
    assert code == EXIT_PROBLEMS and "more than 366 days ahead" in err
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    assert answer(prepare_args(audience, tmp_path / "q", "--send-at", soon), capsys)[0] == 0


def test_unknown_region_is_refused_by_the_library(tmp_path, audience) -> None:
    with pytest.raises(InputError, match="unknown region"):
        prepare(audience, campaign_spec(default_region="ZZ"), tmp_path / "o")


@pytest.mark.parametrize(
    "argv",
    [
        [b"segments", b"caf\xe9"],
        [b"segments", b"--json", b"--", b"\xff\xfe"],
        [b"window", b"--country", b"F\xd2", b"--at", b"2026-12-02T10:00+01:00"],
        [
            b"prepare",
            b"a\xff.csv",
            b"--service-id",
            b"12345",
            b"--campaign",
            b"p",
            b"--sender",
            b"S",
            b"--message",
            b"Hi \xe9",
            b"--out",
            b"o",
        ],
        [b"check", b"SEND-12345-20261201-1000-\xff.csv"],
    ],
)
def test_arguments_that_are_not_utf8_are_usage_errors(tmp_path, argv) -> None:
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"smsdrop", *argv],
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_USAGE, result.stderr
    assert b"is not UTF-8 text" in result.stderr and b"Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()
