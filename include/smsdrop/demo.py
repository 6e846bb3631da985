"""``make demo``: a whole campaign on one machine, from the warehouse and back, no SMS sent.

1. The provider sandbox starts (an SFTP server in this process) with its clock at the
   next minute a French marketing SMS may go, so the demo works on any day and hour.
2. An embedded DuckDB warehouse (``var/demo/warehouse.duckdb``) is seeded with 100,000
   synthetic people with realistic faults (invalid and landline numbers, duplicates, bad
   customer keys, names outside GSM 03.38) and people who opted out earlier.
3. ``airflow dags test sms_campaign`` runs the campaign: extract, validate, opt-outs, data
   contract, plan, upload, ``.done``, ACK (the sandbox's clock jumps ahead while the DAG
   waits, so the 4-day ACK comes in seconds), loading, clean-up.
4. ``airflow dags test sms_reports`` loads the STOP and SMS-MO replies of the recipients.
5. The campaign's figures are printed from the analysts' views.

Along the way the campaign tasks' log lines are shown: the summary, the estimated cost
(``include/prices.yaml``, an example price list) and the alerts the run would send — no
alert connection is configured, so each is shown as "would send" with its subject.

Airflow's own output goes to ``var/demo/*.log``; the event log of the sandbox (the truth
of what it "sent") is ``var/demo/sandbox/.sandbox/events.jsonl``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa

from smsdrop import synthetic
from smsdrop.prepare import first_allowed_slot
from smsdrop.sandbox import Sandbox, SandboxConfig
from smsdrop.warehouse import DuckDBWarehouse, Warehouse

PROJECT = Path(__file__).resolve().parents[2]
DEMO_DIR = Path("var/demo")
TEMPLATE = "Bonjour {first_name}, -20% ce samedi dans votre magasin de {city} ! STOP au 36111"
CAMPAIGN = "demo"
#: The modules whose log lines the demo shows: the tasks' summaries, the cost, the alerts.
SHOWN = ("campaign_tasks", "alerting")


def run(rows: int = 100_000) -> int:
    started = time.perf_counter()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    slot = first_allowed_slot(datetime.now(UTC) + timedelta(minutes=2), ["FR"], None)
    config = SandboxConfig(root=DEMO_DIR / "sandbox", port=0, start=slot, seed=1)
    with Sandbox(config) as sandbox:
        print(
            f"1. provider sandbox on 127.0.0.1:{sandbox.port}, its clock at {slot:%a %d %b %H:%M}"
        )
        warehouse_file = DEMO_DIR / "warehouse.duckdb"
        seeded = seed(warehouse_file, rows)
        print(
            f"2. warehouse {warehouse_file}: {rows:,} people in table audience, "
            f"{seeded:,} opted out earlier"
        )
        env = {
            "AIRFLOW_HOME": str(PROJECT),  # what make sets; the demo's metadata DB
            **os.environ,
            "AIRFLOW_CONN_MTARGET_DEFAULT": json.dumps(sandbox.airflow_connection()),
            "AIRFLOW_CONN_SMSDROP_WAREHOUSE": json.dumps(
                {"conn_type": "duckdb", "extra": {"path": str(warehouse_file.resolve())}}
            ),
            "SMSDROP_STAGING": (DEMO_DIR / "staging").resolve().as_uri(),
            "SMSDROP_POLL_SECONDS": "1",
            "SMSDROP_ACK_POLL_SECONDS": "1",
        }
        conf = {
            "campaign_id": CAMPAIGN,
            "service_id": "12345",
            "audience": "audience",
            "message": TEMPLATE,
            "sender": "SMSDROP",
            "send_at": slot.isoformat(),
            "encoding_policy": "transliterate",
            # The slot may be days away on the real clock (the sandbox's is moved there):
            # upload at once rather than wait for it (no real opt-out can come meanwhile).
            "upload_lead_minutes": 10080,
            # The account of the sandbox names no short code: the mention checked is this.
            "optout_mention": "STOP au 36111",
        }
        print("3. airflow dags test sms_campaign …")
        with sandbox.fast_forward():
            if not airflow(["dags", "test", "sms_campaign", "-c", json.dumps(conf)], env):
                return 1
        print("4. airflow dags test sms_reports …")
        if not airflow(["dags", "test", "sms_reports"], env):
            return 1
    print("5. the campaign in the analysts' views (sms_campaign_stats …):\n")
    show(warehouse_file)
    print(f"\ndemo done in {time.perf_counter() - started:.0f} s; Airflow logs in {DEMO_DIR}/")
    return 0


def seed(path: Path, rows: int) -> int:
    with DuckDBWarehouse(path) as warehouse:
        return seed_into(warehouse, rows)


def seed_into(warehouse: Warehouse, rows: int) -> int:
    """The demo audience (table ``audience``) and its earlier opt-outs, into any warehouse
    (``make airflow`` and the executor tests seed PostgreSQL with it too)."""
    frame = synthetic.audience(rows)
    optouts = synthetic.optouts_for(frame)
    warehouse.migrate()
    warehouse.replace_table("audience", pa.Table.from_pandas(frame, preserve_index=False))
    warehouse.upsert_optouts(pd.DataFrame({"msisdn": optouts}), "import")
    return len(optouts)


def airflow(arguments: list[str], env: dict[str, str]) -> bool:
    """Run an ``airflow`` command, its output in a log file; False (and the log's tail) when
    it fails."""
    log = DEMO_DIR / f"{arguments[2]}.log"
    command = [str(Path(sys.executable).with_name("airflow")), *arguments]
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(command, check=False, env=env, stdout=out, stderr=subprocess.STDOUT)
    text = log.read_text(errors="replace")
    failed = done.returncode != 0 or "state=failed" in text
    print(f"   {'FAILED' if failed else 'success'} in {time.perf_counter() - start:.0f} s ({log})")
    for line in text.splitlines():
        if any(f"smsdrop.airflow.{m}]" in line for m in SHOWN) and "[info" in line:
            message = line.split("[info     ]", 1)[-1].split(" [smsdrop.", 1)[0].strip()
            if not message.startswith("campaign stats"):
                print(f"   | {message}")
    if failed:
        print("\n".join(text.splitlines()[-40:]))
    return not failed


def show(path: Path) -> None:
    with DuckDBWarehouse(path) as warehouse:
        stats = warehouse.campaign_stats(CAMPAIGN)
        width = max(len(k) for k in stats)
        for key, value in stats.items():
            if isinstance(value, float):
                value = f"{value:.2%}"
            elif isinstance(value, int):
                value = f"{value:,}"
            print(f"   {key:<{width}}  {value}")
        rejects = warehouse.query_frame(
            "SELECT reason, count(*) AS rows FROM sms_rejected_rows WHERE campaign_id = %s"
            " GROUP BY reason ORDER BY rows DESC",
            (CAMPAIGN,),
        )
        by_network = warehouse.query_frame(
            "SELECT network, sent, delivered, round(delivery_rate, 3) AS delivery_rate,"
            " stop_replies FROM sms_campaign_stats_by_operator WHERE campaign_id = %s"
            " ORDER BY sent DESC",
            (CAMPAIGN,),
        )
    print("\n   rejected rows by reason (sms_rejected_rows):")
    print("\n".join(f"   {line}" for line in rejects.to_string(index=False).splitlines()))
    by_network["network"] = by_network["network"].fillna("(range without a known network)")
    print("\n   by mobile network, top 8 (sms_campaign_stats_by_operator):")
    print(
        "\n".join(f"   {line}" for line in by_network.head(8).to_string(index=False).splitlines())
    )


if __name__ == "__main__":
    sys.exit(run(int(os.environ.get("SMSDROP_DEMO_ROWS", "100000"))))
