"""
# sms_campaign — one SMS campaign, warehouse in, warehouse out

Trigger it with the form (or `airflow dags trigger sms_campaign -c '{…}'`); nightly
campaigns listed in `include/nightly_campaigns.yaml` are triggered by `sms_campaign_nightly`.

1. **start** — checks the parameters; a campaign id already handed to the provider stops
   the run here (nothing is ever sent twice; use a new campaign id to send again).
2. **extract** — the audience (a table, or a `.sql` file of `include/sql/audience/`; a
   free SELECT only where `SMSDROP_ALLOW_SELECT_AUDIENCE=1`) from the `smsdrop_warehouse`
   connection, on a read-only connection, in batches, into the run's staging folder.
3. **prepare** — message rendered from `{column}` placeholders, numbers and texts
   validated and normalised, opt-outs (`sms_optouts`) and duplicates removed campaign-wide,
   send slot planned inside the destinations' windows, ≤1,000,000-record SEND files
   written; every rejected row saved with its reason in `sms_rejected_rows`. The summary
   is in this task's log and XCom.
4. **contract** — great-expectations checks the SEND files themselves (E.164, unique
   numbers, field rules, segments, no opted-out number as of the end of preparation);
   `prepare` checks each file in a process of its own as soon as it is written, and this
   task fails the run when a file breaks the contract.
5. **record_names** — the SEND names recorded as `planned` before any upload; a dry run or an
   audience without a valid recipient plans nothing, and the run ends here.
   **wait_upload_time** (deferrable) — not before the slot less `upload_lead_minutes`
   (default 15): the provider cannot cancel a file, so it goes as late as it can.
6. **upload** (one mapped task per file) — first the opt-outs the provider published since
   the last load are loaded (as `sms_reports` does) and any number among them is removed
   from the file; then exactly once: `.tmp`, verified, renamed `.csv`.
7. **wait_done** (mapped, deferrable) — `.done`, or `.reject`, which fails the run naming
   the file. **record_outcome** stores each file's state.
8. **wait_ack** (mapped, deferrable; 1 day after sending below 10,000 SMS, 4 days above)
   → **load_acks** into `sms_deliveries` → **tidy_remote** deletes the processed remote
   files. **remove_staged** deletes the run's staged files once they have served.

Poll intervals: `SMSDROP_POLL_SECONDS` (status, default 30) and `SMSDROP_ACK_POLL_SECONDS`
(ACK, default 600), and the wait before a failed task's retry, `SMSDROP_RETRY_DELAY_SECONDS`
(default 60), read from the environment when the DAG is parsed (a bad value is the DAG's
import error, naming the variable: docs/DAGS.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from smsdrop.airflow.alerting import CampaignAlertNotifier
from smsdrop.airflow.operators import MTargetUploadOperator
from smsdrop.airflow.sensors import (
    MTargetFileStatusSensor,
    MTargetReportSensor,
    UploadTimeSensor,
)
from smsdrop.fields import CAMPAIGN
from smsdrop.settings import number_setting

STATUS_POLL = number_setting("SMSDROP_POLL_SECONDS", 30, minimum=0.1)
ACK_POLL = number_setting("SMSDROP_ACK_POLL_SECONDS", 600, minimum=0.1)
RETRY_DELAY = timedelta(seconds=number_setting("SMSDROP_RETRY_DELAY_SECONDS", 60, minimum=0))
DAG_ID = "sms_campaign"


def _before_upload(context: dict) -> None:
    """Upload only names this run planned, after an opt-out refresh (see
    campaign_tasks.before_upload)."""
    from smsdrop.airflow import campaign_tasks

    campaign_tasks.before_upload(context)


def _file_accepted(context: dict) -> None:
    """The provider's notice "file accepted" as an alert (campaign_tasks.file_accepted)."""
    from smsdrop.airflow import campaign_tasks

    campaign_tasks.file_accepted(context)


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # A task failed for good (retries spent) → an alert (smsdrop.airflow.alerting): per
    # task, so the alert has the task's exception.
    default_args={
        "retries": 2,
        "retry_delay": RETRY_DELAY,
        "on_failure_callback": CampaignAlertNotifier(),
    },
    tags=["smsdrop"],
    doc_md=__doc__,
    # The form: one Param per campaign field, its rule from smsdrop.fields.
    params={f.name: Param(f.form_default, f.description, **f.param_schema()) for f in CAMPAIGN},
)
def sms_campaign() -> None:
    @task.short_circuit
    def start(params: dict | None = None, run_id: str | None = None) -> dict | bool:
        from smsdrop.airflow import campaign_tasks

        return campaign_tasks.start(dict(params or {}), str(run_id), DAG_ID)

    @task
    def extract(request: dict, run_id: str | None = None) -> dict:
        from smsdrop.airflow import campaign_tasks

        return campaign_tasks.extract(request, str(run_id))

    @task(multiple_outputs=True)
    def prepare(request: dict, extracted: dict) -> dict:
        from smsdrop.airflow import campaign_tasks

        return campaign_tasks.prepare(request, extracted)

    @task
    def contract(summary: dict) -> dict:
        from smsdrop.airflow import campaign_tasks

        return campaign_tasks.contract(summary)

    @task
    def record_names(request: dict, prepared: dict, run_id: str | None = None, ti=None) -> list:
        from smsdrop.airflow import campaign_tasks

        return campaign_tasks.record_names(request, prepared, str(run_id), ti)

    @task(trigger_rule="all_done")
    def record_outcome(request: dict, files: list | None) -> dict:
        from smsdrop.airflow import campaign_tasks

        return campaign_tasks.record_outcome(request, files)

    @task
    def load_acks(request: dict, files: list) -> dict:
        from smsdrop.airflow import campaign_tasks

        return campaign_tasks.load_acks(request, files)

    @task
    def tidy_remote(files: list) -> int:
        from smsdrop.airflow import campaign_tasks

        return campaign_tasks.tidy_remote(files)

    @task(trigger_rule="all_done")
    def remove_staged(params: dict | None = None, run_id: str | None = None) -> bool:
        from smsdrop.airflow import campaign_tasks

        return campaign_tasks.remove_staged(str((params or {})["campaign_id"]), str(run_id))

    request = start()
    prepared = prepare(request, extract(request))
    checked = contract(prepared["summary"])
    planned = record_names(request, {"files": prepared["files"], "summary": prepared["summary"]})
    checked >> planned

    # Not before the slot less the lead time; then one upload per file, each refreshing the
    # opt-outs first. An empty plan (dry run, nobody to send to) maps to nothing.
    wait_upload = UploadTimeSensor(
        task_id="wait_upload_time",
        upload_at="{{ ti.xcom_pull(task_ids='record_names', key='upload_at') }}",
        poke_interval=STATUS_POLL,
        timeout=8 * 24 * 3600,
    )
    planned >> wait_upload
    upload = MTargetUploadOperator.partial(
        task_id="upload", pre_execute=_before_upload
    ).expand_kwargs(planned)
    wait_upload >> upload
    done = MTargetFileStatusSensor.partial(
        task_id="wait_done",
        poke_interval=STATUS_POLL,
        lock_deadline_minutes="{{ params.lock_deadline_minutes }}",
        on_success_callback=_file_accepted,
    ).expand(name=upload.output)
    outcome = record_outcome(request, planned)
    done >> outcome
    ack = MTargetReportSensor.partial(task_id="wait_ack", poke_interval=ACK_POLL).expand(
        name=upload.output
    )
    outcome >> ack
    loaded = load_acks(request, planned)
    ack >> loaded
    tidy_remote(planned).set_upstream(loaded)
    remove_staged().set_upstream([outcome, checked, planned])


sms_campaign()
