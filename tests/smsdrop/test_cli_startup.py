"""The quick commands answer at once: `segments`, `window` and `--help` import neither the
data stack (pandas, numpy, pyarrow) nor the SFTP stack (asyncssh, paramiko), nor the
`holidays` package (the French calendars are data: smsdrop.public_holidays)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "asyncssh",
    "paramiko",
    "duckdb",
    "great_expectations",
    "holidays",
)
PROBE = r"""
import contextlib, io, json, sys
from smsdrop.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["segments", "Bonjour ê"],
        ["segments", "--json", "--", "-20% ce samedi"],
        ["--help"],
        ["prepare", "--help"],
        ["window", "--country", "FR", "--at", "2026-12-01T10:00+01:00", "--json"],
        ["window", "--country", "FRA", "--at", "2026-12-01T10:00+01:00"],
    ],
)
def test_quick_commands_import_no_heavy_module(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], check=True, capture_output=True, text=True, timeout=60
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert result["code"] in (0, 2)  # FRA is a usage error; the others answer
    if argv[0] == "segments" and "--json" in argv:
        assert json.loads(result["out"])["segments"] == 1
