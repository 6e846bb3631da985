"""Campaign DAGs for the tests that run Airflow's own processes (``test_real_processes.py``).

Not a project DAG: only those tests' subprocesses set ``AIRFLOW__CORE__DAGS_FOLDER`` to
this folder. The SEND files come as params (``airflow dags test DAG_ID -c '{...}'``).

* ``mtarget_real_campaign``: upload → status sensor → ACK sensor, as the campaign DAG wires
  them (docs/AIRFLOW.md), both sensors deferrable;
* ``mtarget_real_two_files``: the same, plus a second file that the provider rejects
  (``upload_rejected`` → ``status_rejected``), so one run defers three waits at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from smsdrop.airflow.operators import MTargetUploadOperator
from smsdrop.airflow.sensors import MTargetFileStatusSensor, MTargetReportSensor

#: Seconds between two polls of a trigger (and of a poking sensor): short, for tests.
POLL = 0.5


def campaign(dag_id: str, *, rejected_too: bool) -> DAG:
    params = {"local_path": Param(type="string", description="the SEND file to upload")}
    if rejected_too:
        params["rejected_path"] = Param(type="string", description="a SEND file to reject")
    with DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params=params,
        default_args={"retries": 2, "retry_delay": timedelta(seconds=0)},
        tags=["test"],
    ) as dag:
        upload = MTargetUploadOperator(task_id="upload", local_path="{{ params.local_path }}")
        status = MTargetFileStatusSensor(
            task_id="status", name=upload.output, poke_interval=POLL, deferrable=True
        )
        ack = MTargetReportSensor(
            task_id="ack", name=upload.output, poke_interval=POLL, stable_for=0.2, deferrable=True
        )
        upload >> status >> ack
        if rejected_too:  # uploaded second: each status sensor checks soon after its upload
            rejected = MTargetUploadOperator(
                task_id="upload_rejected", local_path="{{ params.rejected_path }}"
            )
            (
                upload
                >> rejected
                >> MTargetFileStatusSensor(
                    task_id="status_rejected", name=rejected.output, poke_interval=POLL
                )
            )
    return dag


campaign("mtarget_real_campaign", rejected_too=False)
campaign("mtarget_real_two_files", rejected_too=True)
