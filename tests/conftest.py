"""Shared test setup: hypothesis profiles sized for a 2-core machine, and what each
pytest-xdist worker must not share with the others (``make test`` runs ``pytest -n``).

Under xdist (``PYTEST_XDIST_WORKER`` set) a worker gets, before anything imports Airflow:
its own Airflow metadata DB (a copy of the migrated ``var/airflow.db``: two workers'
``dag.test()`` runs in one SQLite file would lock each other out and see each other's
runs), its own task-log folder (tests read the logs of their own runs, and assert what is
absent from them) and its own default staging root. Every subprocess a test starts inherits
them. A plain ``pytest`` run (one process) keeps the project's own ``var/``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]

settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def _worker_state(worker: str) -> Path:
    """A private folder with the worker's metadata DB, logs and staging; the env set."""
    folder = Path(tempfile.mkdtemp(prefix=f"smsdrop-{worker}-"))
    shared = ROOT / "var" / "airflow.db"
    if shared.is_file():  # migrated by `make test`'s bootstrap; else `airflow_db` migrates
        # SQLite's backup API: a consistent copy even while another process writes to it
        copy = folder / "airflow.db"
        with closing(sqlite3.connect(shared)) as source, closing(sqlite3.connect(copy)) as to:
            source.backup(to)
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{folder}/airflow.db")
    os.environ.setdefault("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(folder / "logs"))
    os.environ.setdefault("SMSDROP_STAGING", (folder / "staging").as_uri())
    return folder


WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, … under `pytest -n`
WORKER_STATE = _worker_state(WORKER) if WORKER else None


def pytest_unconfigure(config: pytest.Config) -> None:
    if WORKER_STATE is not None:
        shutil.rmtree(WORKER_STATE, ignore_errors=True)


#: The deployment tests (a whole Airflow each: scheduler, api-server, dag-processor,
#: triggerer, workers) in two chains, each run test after test on one worker and handed
#: out first: at most two deployments at once (three at once overload 2 cores: heartbeats
#: stall, tasks retry), and the third worker takes everything else. Seconds each alone,
#: set-up included, quiet, with 5 s retry delays (2026-12-02 15:30): 384 and 334 a chain.
DEPLOYMENT_CHAINS = {
    "tests/deploy/test_local_executor.py::test_four_campaigns_and_sms_reports": "deploy-1",  # 204
    "tests/deploy/test_celery_executor.py::": "deploy-1",  # 180, both tests on one deployment
    "tests/deploy/test_make_airflow.py::test_make_airflow_runs": "deploy-2",  # 121
    "tests/deploy/test_local_executor.py::test_a_multi_file_campaign": "deploy-2",  # 118
    "tests/deploy/test_local_executor.py::test_the_sandbox_killed": "deploy-2",  # 95
}
#: The longest tests, handed out first in this order: the chains, then the longest test
#: that starts no deployment (85 s: it waits out a one-minute deadline).
LONGEST_FIRST = (
    *DEPLOYMENT_CHAINS,
    "tests/airflow/test_campaign_controls.py::test_a_file_the_provider_never_takes",
)


def _schedule_rank(item: pytest.Item) -> tuple[int, int]:
    """Its place in :data:`LONGEST_FIRST`, then other ``slow`` tests, then the rest."""
    for place, prefix in enumerate(LONGEST_FIRST):
        if item.nodeid.startswith(prefix):
            return (0, place)
    return (1, 0) if item.get_closest_marker("slow") else (2, 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``pytest -n``, the longest tests are handed out first: a worker that picks a
    3-minute deployment test last would finish minutes after the others. Only the order
    changes (the same on every worker, as xdist requires); every test runs."""
    if WORKER:
        items.sort(key=_schedule_rank)  # stable: the collection order within each rank


#: Modules whose tests share one expensive module-scoped set-up: under ``--dist loadgroup``
#: all of a module's tests go to one worker, which builds it once. Every other test is
#: handed out alone, to whichever worker is free, but the deployment tests
#: (:data:`DEPLOYMENT_CHAINS`).
ONE_WORKER_MODULES = {
    "tests/airflow/test_real_processes.py": "a migrated private Airflow",
    "tests/plugin/test_browser.py": "an api-server with the plugin",
    "tests/dags/test_dag_integrity.py": "the DAG folder parsed in a subprocess",
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadgroup`` with :data:`DEPLOYMENT_CHAINS` and :data:`ONE_WORKER_MODULES` as
    groups. xdist's own way, an ``xdist_group`` mark, does nothing with pytest 9: xdist
    3.8.0 renames the grouped node ids through ``item._nodeid``, which pytest 9 no longer
    reads. A scheduler's scope (``_split_scope``) is the hook xdist offers for this."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    # Units in the collection's order (LONGEST_FIRST first), not re-sorted by their number
    # of tests (xdist's default), which would hand out the grouped modules first.
    config.option.loadscopereorder = False

    class ModuleGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            for prefix, chain in DEPLOYMENT_CHAINS.items():
                if nodeid.startswith(prefix):
                    return chain
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else super()._split_scope(nodeid)

    return ModuleGroups(config, log)
