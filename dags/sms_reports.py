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

A run that added opt-outs updates the Asset **`smsdrop://optouts`** (its extra holds the
run's counts): a DAG scheduled on it runs when the suppression list changed, and a
campaign prepared after the event excludes those people. XCom carries counts only; logs never show a number or a message.
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
    @task
    def load_reply_reports() -> dict[str, int]:
        """STOP and SMSMO reports → opt-outs and replies (see the DAG's doc)."""
        from smsdrop.airflow.reports_task import load_reply_reports as load

        return load()

    @task.short_circuit
    def new_optouts(counts: dict[str, int]) -> bool:
        """Go on to the Asset event only when opt-outs were added or moved earlier."""
        return counts["optouts"] > 0

    @task(outlets=[OPTOUTS])
    def announce_optouts(counts: dict[str, int]) -> None:
        """Update ``smsdrop://optouts``; the event's extra holds the run's counts."""
        from airflow.sdk import get_current_context

        get_current_context()["outlet_events"][OPTOUTS].extra = dict(counts)

    counts = load_reply_reports()
    new_optouts(counts) >> announce_optouts(counts)


sms_reports()
