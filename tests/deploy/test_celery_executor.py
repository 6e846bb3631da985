"""``sms_campaign`` through a real deployment: CeleryExecutor, Redis broker, two workers.

One deployment for the module (``conftest.deployment``: metadata DB and warehouse on
PostgreSQL, a private Celery queue on the Redis of 127.0.0.1:6379, two ``airflow celery
worker`` processes, each naming itself in the task instances' ``hostname``).

1. A 4-file campaign: its mapped uploads run on both workers, every task in one try.
2. A worker SIGKILLed (its whole process group) while an upload is in flight (the proxy in
   front of the sandbox slows uploads down to seconds): the task is failed once its
   heartbeat stops, retried on the other worker, and the file is still sent exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.deploy.conftest import Deployment, deployment
from tests.deploy.support import accounted, by_task

pytestmark = pytest.mark.slow
DAG = "sms_campaign"
WORKERS = {"worker1", "worker2"}


@pytest.fixture(scope="module")
def celery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    # a task whose worker is SIGKILLed is failed (then retried) after 20 s, not 5 min
    yield from deployment(tmp_path_factory, "CeleryExecutor", workers=2, heartbeat_timeout=20)


def check_accounted(celery: Deployment, campaign_id: str) -> None:
    figures = accounted(celery.warehouse(), celery.sandbox, campaign_id)
    assert figures["recipients"] == figures["valid+rejected"] == 7_000, figures
    assert figures["rejected"] == figures["rejected_rows"] > 0, figures
    assert figures["valid"] == figures["in_files"] == figures["acked"], figures
    assert (figures["files"], figures["states"]) == (4, ["done"]), figures
    assert figures["not_sent_exactly_once"] == [], figures


def test_mapped_uploads_are_spread_over_both_workers(celery: Deployment) -> None:
    stack = celery.stack
    started = time.monotonic()
    # Uploads of ~5 s each: a worker holds at most 2 unacknowledged messages (concurrency 2,
    # prefetch 1, late acks), so the other 2 of the 4 queued at once go to the other worker.
    # At full speed one worker can finish each upload before the other polls the queue.
    celery.proxy.rate = 40_000
    try:
        run_id = stack.trigger(DAG, celery.conf("celery1"))
        with celery.sandbox.fast_forward():
            state = stack.wait_run(DAG, run_id, timeout=420)
    finally:
        celery.proxy.rate = None
    elapsed = time.monotonic() - started
    tis = by_task(stack.task_instances(DAG, run_id))

    assert state == "success", {k: [t["state"] for t in v] for k, v in tis.items()}
    assert len(tis["upload"]) == 4
    assert {t["hostname"] for t in tis["upload"]} == WORKERS, tis["upload"]
    assert {t["hostname"] for ts in tis.values() for t in ts} <= WORKERS
    tries = {(t["task_id"], t["map_index"]): (t["state"], t["try_number"]) for ts in tis.values() for t in ts}  # fmt: skip
    assert set(tries.values()) == {("success", 1)}, tries
    check_accounted(celery, "celery1")
    print(f"\nCeleryExecutor campaign (2 workers): {elapsed:.0f} s")


def test_a_worker_killed_mid_upload_and_the_upload_retried_on_the_other(
    celery: Deployment,
) -> None:
    stack, sandbox, proxy = celery.stack, celery.sandbox, celery.proxy
    started = time.monotonic()
    proxy.rate = 40_000  # bytes/s: a 217 KB SEND file takes ~5 s
    try:
        run_id = stack.trigger(DAG, celery.conf("celery2"))
        deadline = time.monotonic() + 300
        victim = None
        while victim is None:
            assert time.monotonic() < deadline, "no upload was ever seen in flight"
            # a .tmp exists from the open on; its bytes land whole (one pipelined write)
            in_flight = list(sandbox.layout.send.glob("*.tmp"))
            running = [
                t
                for t in stack.task_instances(DAG, run_id)
                if t["task_id"] == "upload" and t["state"] == "running" and t["hostname"]
            ]
            if in_flight and running:
                victim = running[0]["hostname"]
            else:
                time.sleep(0.3)
        killed = {
            t["map_index"]
            for t in stack.task_instances(DAG, run_id)
            if t["task_id"] == "upload" and t["state"] == "running" and t["hostname"] == victim
        }
        stack.kill(victim)
    finally:
        proxy.rate = None
    survivor = (WORKERS - {victim}).pop()
    try:
        with sandbox.fast_forward():
            state = stack.wait_run(DAG, run_id, timeout=600)
    finally:
        stack.start_component(victim)
    elapsed = time.monotonic() - started
    tis = by_task(stack.task_instances(DAG, run_id))

    assert state == "success", {k: [t["state"] for t in v] for k, v in tis.items()}
    uploads = {t["map_index"]: t for t in tis["upload"]}
    for index in killed:  # failed when its heartbeat stopped, retried on the survivor
        assert (uploads[index]["try_number"], uploads[index]["hostname"]) == (2, survivor)
    for task_id, instances in tis.items():
        for ti in instances:
            if not (task_id == "upload" and ti["map_index"] in killed):
                assert ti["try_number"] == 1, ti
    assert not list(sandbox.layout.send.glob("*.tmp"))  # the killed try's .tmp removed
    figures = accounted(celery.warehouse(), sandbox, "celery2")
    assert figures["not_sent_exactly_once"] == [], figures
    check_accounted(celery, "celery2")
    print(f"\nCelery worker SIGKILLed mid-upload: campaign done in {elapsed:.0f} s")
