"""No user input produces a traceback: random files and texts through the command."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from smsdrop.cli import EXIT_OK, EXIT_PROBLEMS, main

RECORD = st.lists(
    st.sampled_from(
        ["A1", "+33612345678", "0612345678", "Shop", "€", '"', ";", "\r\n", "\n", "é", "", " "]
    )
    | st.text(max_size=12),
    max_size=6,
)


@settings(max_examples=60)
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


@settings(max_examples=100)
@given(st.text())
def test_segments_of_any_text(text) -> None:
    assert main(["segments", "--json", "--", text]) == EXIT_OK


@settings(max_examples=40)
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
