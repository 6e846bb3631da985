"""``make demo`` works: the whole campaign on a small audience, as a newcomer runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_runs_a_campaign_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(ROOT), "SMSDROP_DEMO_ROWS": "4000"}
    done = subprocess.run(
        [sys.executable, "-m", "smsdrop.demo"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert out.count("   success in ") == 2, out
    to_send = int(re.search(r"recipients 4,000: ([\d,]+) to send", out)[1].replace(",", ""))
    acked = int(re.search(r"^   acked\s+([\d,]+)$", out, re.MULTILINE)[1].replace(",", ""))
    assert 3_000 < to_send == acked
    assert "removed 2 processed remote file(s)" in out
    assert not any((tmp_path / "var/demo/staging").rglob("*.csv"))  # staged data removed
    assert not re.search(r"\+33\d{9}", out)  # no full number on screen
    # The estimate and the alerts the run would send (no alert connection in the demo).
    cost = re.search(r"\| estimated cost: ([0-9.]+) EUR \(by country: [^;]*FR ([0-9.]+)", out)
    assert cost and float(cost[1]) >= float(cost[2]) > 0, out
    would = "| alert (would send; no alert connection): [smsdrop ok] campaign demo: "
    assert out.count(would) == 2, out  # one file accepted, then the campaign programmed
    assert re.search(re.escape(would) + r"SEND-12345-\d{8}-\d{4}-demo\.csv accepted", out)
    assert f"{would}{to_send:,} SMS programmed" in out
