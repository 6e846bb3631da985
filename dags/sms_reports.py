"""
# sms_reports — opt-outs and replies, every 10 minutes

Reads the provider's growing **STOP** and **SMSMO** reports (`Report/` on the
`mtarget_default` connection) from where the last run stopped (byte offsets kept in the
warehouse, `sms_report_offsets`), and loads what is new into the `smsdrop_warehouse`
connection's warehouse:

- `STOP-*.csv` → the suppression list `sms_optouts` (source `stop_report`);
- `SMSMO-*.csv` → `sms_replies`; a reply whose first word is an opt-out keyword (STOP,
  ARRET, ARRÊT, STOPALL, UNSUBSCRIBE, …, any case) is an opt-out too (source `mo_reply`).

Rows and the new offset are saved in one transaction; a line the provider is still writing
is read next time. Loads are idempotent: a re-run changes nothing.

Each successful run updates the Asset **`smsdrop://optouts`** (its extra holds the run's
counts): a campaign DAG scheduled on it, or waiting for it, prepares its audience with the
opt-outs loaded so far. XCom carries counts only; logs never show a number or a message.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task

OPTOUTS = Asset("smsdrop://optouts")


@dag(
    dag_id="sms_reports",
    schedule="*/10 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": timedelta(minutes=1)},
    dagrun_timeout=timedelta(minutes=30),
    tags=["smsdrop"],
    doc_md=__doc__,
)
def sms_reports() -> None:
    @task(outlets=[OPTOUTS])
    def load_reply_reports() -> dict[str, int]:
        """STOP and SMSMO reports → opt-outs and replies (see the DAG's doc)."""
        from airflow.sdk import get_current_context

        from smsdrop.airflow.reports_task import load_reply_reports as load

        counts = load()
        get_current_context()["outlet_events"][OPTOUTS].extra = dict(counts)
        return counts

    load_reply_reports()


sms_reports()
