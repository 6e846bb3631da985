"""
# sms_campaign_nightly — the campaigns of `include/nightly_campaigns.yaml`, every night

At 01:30 Paris time, reads `include/nightly_campaigns.yaml` (at run time: editing the
file needs no deploy) and triggers one `sms_campaign` run per campaign due that night,
with the entry as its parameters. `{date}` in a campaign id becomes the night's date, so
each night is a new campaign; `send_time` is Paris time on the day of the run.

The run id of each triggered run is `nightly__<campaign id>`: clearing or re-running this
DAG triggers nothing twice (and `sms_campaign` itself never sends a campaign id twice). A
bad entry fails the night before any campaign is triggered, naming the entry and field.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable


@dag(
    dag_id="sms_campaign_nightly",
    schedule=CronTriggerTimetable("30 1 * * *", timezone="Europe/Paris"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["smsdrop"],
    doc_md=__doc__,
)
def sms_campaign_nightly() -> None:
    @task
    def campaigns_due(logical_date: datetime | None = None) -> list[dict]:
        """The night's runs: ``{"trigger_run_id", "conf"}`` per campaign due."""
        import logging

        from airflow.sdk.exceptions import AirflowFailException

        from smsdrop.errors import InputError
        from smsdrop.naming import PARIS
        from smsdrop.nightly import runs_for

        night = (logical_date or datetime.now(PARIS)).astimezone(PARIS).date()
        try:
            runs = runs_for(night)
        except InputError as error:
            raise AirflowFailException(str(error)) from None
        logging.getLogger(__name__).info(
            "%s: %d campaign(s) due: %s",
            night,
            len(runs),
            ", ".join(r["conf"]["campaign_id"] for r in runs) or "none",
        )
        return runs

    TriggerDagRunOperator.partial(
        task_id="trigger_campaign",
        trigger_dag_id="sms_campaign",
        skip_when_already_exists=True,
        wait_for_completion=False,
    ).expand_kwargs(campaigns_due())


sms_campaign_nightly()
