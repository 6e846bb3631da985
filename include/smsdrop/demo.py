"""``make demo``: prepare a campaign for a synthetic audience, end to end, without Airflow.

It writes a 100,000-person audience with realistic faults (invalid and landline numbers,
duplicates, bad customer keys, names that are not GSM 03.38) and an opt-out list under
``var/demo/``, runs ``smsdrop prepare`` on it and prints the summary. Later stages (the
provider sandbox, the Airflow DAGs) extend this demo.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from smsdrop import synthetic
from smsdrop.cli import main as cli

DEMO_DIR = Path("var/demo")
TEMPLATE = "Bonjour {first_name}, -20% ce samedi dans votre magasin de {city} ! STOP au 36111"


def run(rows: int = 100_000) -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    frame = synthetic.audience(rows)
    audience = synthetic.write_audience(frame, DEMO_DIR / "audience.parquet")
    optouts = DEMO_DIR / "optouts.csv"
    synthetic.write_audience(synthetic.optouts_for(frame).to_frame(), optouts)
    print(f"demo: {rows:,} synthetic recipients in {audience}; opt-outs in {optouts}\n")
    return cli(
        [
            "prepare",
            str(audience),
            "--service-id",
            "12345",
            "--campaign",
            "demo",
            "--sender",
            "SMSDROP",
            "--message",
            TEMPLATE,
            "--optouts",
            str(optouts),
            "--encoding-policy",
            "transliterate",
            "--out",
            str(DEMO_DIR / "out"),
        ]
    )


if __name__ == "__main__":
    sys.exit(run())
