"""
# sms_reports — opt-outs and replies, every 10 minutes

Reads the provider's growing **STOP** and **SMSMO** reports (`Report/` on the
`mtarget_default` connection) from where the last run stopped (byte offsets kept in the
warehouse, `sms_report_offsets`), and loads what is new into the `smsdrop_warehouse`
connection's warehouse — with one SFTP session, STOP reports first, each file on its own
(`smsdrop.airflow.reports_task.refresh_optouts`, the same code a campaign runs before it
uploads):

- `STOP-*.csv` → the suppression list `sms_optouts` (source `stop_report`);
- `SMSMO-*.csv` → `sms_replies`; a reply whose first word is an opt-out keyword (STOP,
  ARRET, ARRÊT, STOPALL, UNSUBSCRIBE, …, any case) is an opt-out too (source `mo_reply`).

The provider's files are not trusted: a record that does not parse (wrong field count,
unterminated quote, impossible date, a STOP number that cannot be normalised, longer than
64 KiB) is **set aside** in `sms_report_quarantine` (file, byte offset, reason, masked
text) and the offset moves past it; NUL and invalid UTF-8 bytes are replaced by `?`. Rows,
records set aside and the new offset are saved in one transaction per file; a line the
provider is still writing is read next time. Loads are idempotent: a re-run changes nothing.

A run that added opt-outs updates the Asset **`smsdrop://optouts`** (its extra holds the
run's counts): a DAG scheduled on it runs when the suppression list changed, and a
campaign prepared after the event excludes those people. A report file that could not be
loaded does not stop the others nor the Asset event; `check_failures` then fails the run,
and the next run tries that file again. A run in which every file went through is recorded
in `sms_optout_loads` (`Warehouse.last_optout_load()`: how fresh the suppression list is).
XCom carries counts only; logs never show a number or a message.
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

    @task
    def check_failures(counts: dict[str, int]) -> None:
        """Fail the run when a report file could not be loaded (the others were; the log of
        ``load_reply_reports`` names it and why); the next run tries it again."""
        from airflow.sdk.exceptions import AirflowFailException

        if counts.get("failed"):
            raise AirflowFailException(
                f"{counts['failed']} report file(s) could not be loaded: see load_reply_reports"
            )

    counts = load_reply_reports()
    new_optouts(counts) >> announce_optouts(counts)
    check_failures(counts)


sms_reports()
