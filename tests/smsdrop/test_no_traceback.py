"""No user input produces a traceback: random files and texts through the command."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsdrop.cli import EXIT_OK, EXIT_PROBLEMS, main

RECORD = st.lists(
    st.sampled_from(
        ["A1", "+33612345678", "0612345678", "Shop", "€", '"', ";", "\r\n", "\n", "é", "", " "]
    )
    | st.text(max_size=12),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(RECORD, max_size=8),
    st.sampled_from(
        [
            "SEND-12345-20261201-1000-promo.csv",
            "SEND12345-x.csv",
            "x.tmp",
            "ACK-12345-20261201-1000-a.csv",
        ]
    ),
    st.binary(max_size=20),
)
def test_check_any_file_exits_cleanly(tmp_path_factory, records, name, junk) -> None:
    path = Path(tmp_path_factory.mktemp("f")) / name
    path.write_bytes("\r\n".join(";".join(r) for r in records).encode() + junk)
    assert main(["check", str(path)]) in (EXIT_OK, EXIT_PROBLEMS)
    assert main(["check", "--json", str(path)]) in (EXIT_OK, EXIT_PROBLEMS)


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_segments_of_any_text(text) -> None:
    assert main(["segments", "--json", "--", text]) == EXIT_OK


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.text(max_size=10), min_size=1, max_size=4), max_size=6))
def test_prepare_any_csv_exits_cleanly(tmp_path_factory, rows) -> None:
    folder = Path(tmp_path_factory.mktemp("p"))
    audience = folder / "a.csv"
    audience.write_text(
        "idremote,msisdn\n" + "\n".join(",".join(r) for r in rows), encoding="utf-8"
    )
    code = main(
        [
            "prepare",
            str(audience),
            "--service-id",
            "12345",
            "--campaign",
            "p",
            "--sender",
            "S",
            "--message",
            "hi",
            "--out",
            str(folder / "o"),
        ]
    )
    assert code in (EXIT_OK, EXIT_PROBLEMS)


def _answer(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as stop:  # usage errors
        return int(stop.code)


#: Argument values that have broken commands: bounds, years, codes, bytes that are not UTF-8.
HOSTILE = st.sampled_from(
    [
        "0",
        "-1",
        "1000001",
        "1e3",
        "",
        " ",
        "FRA",
        "fr",
        "ZZ",
        "23:00",
        "07:00",
        "00:00",
        "20:00:30",
        "0001-01-01T00:00+00:00",
        "9999-12-31T23:59+00:00",
        "0001-01-01T00:00+05:00",
        "2026-12-01T10:00",
        "rot13",
        "utf-16",
        "utf-8-sig",
        "caf\udce9",
        "\x1b[2J",
        "-x",
    ]
) | st.text(max_size=12)

PREPARE_OPTIONS = [
    "--default-region",
    "--send-at",
    "--window-end",
    "--file-encoding",
    "--max-records",
    "--batch-size",
    "--service-id",
    "--campaign",
    "--sender",
    "--message",
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.sampled_from(PREPARE_OPTIONS), HOSTILE, max_size=3))
def test_prepare_any_arguments_answer_cleanly(tmp_path_factory, capsys, options) -> None:
    folder = Path(tmp_path_factory.mktemp("a"))
    audience = folder / "a.csv"
    audience.write_text("idremote,msisdn\nA1,0612345678\n", encoding="utf-8")
    base = {"--service-id": "12345", "--campaign": "p", "--sender": "S", "--message": "hi"}
    args = ["prepare", str(audience), "--out", str(folder / "o")]
    for name, value in {**base, **options}.items():
        args += [f"{name}={value}"]
    assert _answer(args) in (0, 1, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(HOSTILE, HOSTILE, st.one_of(st.none(), HOSTILE))
def test_window_any_arguments_answer_cleanly(capsys, country, at, end) -> None:
    args = ["window", f"--country={country}", f"--at={at}", "--json"]
    args += [f"--end={end}"] if end is not None else []
    assert _answer(args) in (0, 1, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(HOSTILE, HOSTILE, HOSTILE)
def test_check_any_arguments_answer_cleanly(tmp_path_factory, capsys, records, region, enc):
    path = Path(tmp_path_factory.mktemp("c")) / "SEND-12345-20261201-1000-promo.csv"
    path.write_bytes(b"A1;+33612345678;Shop;Hi\r\n")
    args = ["check", str(path), f"--max-records={records}", f"--default-region={region}"]
    assert _answer([*args, f"--file-encoding={enc}"]) in (0, 1, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
