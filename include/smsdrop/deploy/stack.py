"""Airflow's components as processes: one launcher for ``make airflow`` and the tests.

A real Airflow 3 deployment is several processes — api-server (UI, REST API and the
execution API the tasks report to), scheduler (with its executor), dag-processor,
triggerer, and with Celery the workers — that only work together when they share some
settings (../shared/FIELD-NOTES.md, "A real Airflow 3.3 deployment on one machine"):

- the JWT secret the api-server signs task tokens with (without it every task fails at
  once with "Invalid auth token") and the Fernet key that encrypts connections and
  variables in the metadata DB. Both are generated once and kept in a file (mode 0600)
  under ``var/``, so a restart reuses them;
- where the execution API is (``EXECUTION_API_SERVER_URL``), the metadata DB, the executor.

Each component runs in a process group of its own (``start_new_session``) and is stopped by
group: a SIGKILLed scheduler would otherwise orphan its LocalExecutor workers, and a Celery
worker its pool. Nothing here imports Airflow; the REST API is reached with ``urllib``
(with ``SIMPLE_AUTH_MANAGER_ALL_ADMINS`` no login is needed).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

__all__ = ["AirflowStack", "StackConfig", "group_gone", "hostname", "load_or_create_secrets"]

PROJECT = Path(__file__).resolve().parents[3]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
#: Components started by :meth:`AirflowStack.start`, in order; Celery workers come after.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Each component's own health entry in ``/api/v2/monitor/health``.
HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
FINAL_RUN_STATES = frozenset({"success", "failed"})


def hostname() -> str:
    """``[core] hostname_callable`` of the components: ``SMSDROP_HOSTNAME`` when set (each
    Celery worker of one machine gets its own, so a task instance's ``hostname`` says which
    worker ran it), else the machine's name."""
    return os.environ.get("SMSDROP_HOSTNAME") or socket.getfqdn()


def load_or_create_secrets(path: Path) -> dict[str, str]:
    """The settings every component must share, created once (mode 0600) and then reused:
    regenerating them on a restart would orphan the tokens of running tasks and make the
    encrypted connections in the metadata DB unreadable."""
    if path.is_file():
        return json.loads(path.read_text())
    values = {
        "jwt_secret": secrets.token_urlsafe(32),
        "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),  # a Fernet key
        "api_secret_key": secrets.token_urlsafe(32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(values, indent=1) + "\n")
    partial.chmod(0o600)
    partial.replace(path)
    return values


@dataclass
class StackConfig:
    """One deployment: where its files go, its metadata DB and executor, its port."""

    home: Path  # secrets.json and each component's output (<name>.log)
    sql_alchemy_conn: str
    executor: str = "LocalExecutor"
    api_port: int = 8080
    celery_workers: int = 0
    celery_broker: str | None = None  # redis://127.0.0.1:6379/0
    worker_concurrency: int = 4
    queue: str = "default"  # the Celery queue (a private one keeps two deployments apart)
    env: dict[str, str] = field(default_factory=dict)  # connections, smsdrop settings, …

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


class AirflowStack:
    """Start, watch, fault and stop the components of one :class:`StackConfig`."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.secrets_file = config.home / "secrets.json"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # --- settings ---------------------------------------------------------------------

    def environment(self, name: str = "") -> dict[str, str]:
        """The environment of a component (``name`` gives a Celery worker its hostname)."""
        config, shared = self.config, load_or_create_secrets(self.secrets_file)
        env = {
            **os.environ,
            "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME", str(PROJECT)),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": config.sql_alchemy_conn,
            "AIRFLOW__CORE__EXECUTOR": config.executor,
            "AIRFLOW__CORE__FERNET_KEY": shared["fernet_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": shared["jwt_secret"],
            "AIRFLOW__API__SECRET_KEY": shared["api_secret_key"],
            "AIRFLOW__API__PORT": str(config.api_port),
            "AIRFLOW__API__BASE_URL": f"http://localhost:{config.api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{config.base_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "smsdrop.deploy.stack.hostname",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": config.queue,
            **config.env,
        }
        if config.celery_broker:
            env["AIRFLOW__CELERY__BROKER_URL"] = config.celery_broker
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(config.worker_concurrency)
        env.pop("SMSDROP_HOSTNAME", None)
        if name.startswith("worker"):
            env["SMSDROP_HOSTNAME"] = name
        return env

    # --- lifecycle --------------------------------------------------------------------

    def migrate(self) -> None:
        """``airflow db migrate``: idempotent, a few seconds on an up-to-date DB."""
        self.config.home.mkdir(parents=True, exist_ok=True)
        log = self.config.home / "db-migrate.log"
        with log.open("wb") as out:
            done = subprocess.run(
                [AIRFLOW, "db", "migrate"],
                env=self.environment(),
                cwd=PROJECT,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"airflow db migrate failed ({log}):\n{tail}")

    def names(self) -> list[str]:
        workers = [f"worker{i}" for i in range(1, self.config.celery_workers + 1)]
        return [*COMPONENTS, *workers]

    def command(self, name: str) -> list[str]:
        """The command line of a component. Logs are read from the shared log folder, so
        no component serves them (two workers of one machine would want the same port)."""
        if name == "api-server":
            return [AIRFLOW, "api-server", "--port", str(self.config.api_port), "--workers", "1"]
        if name == "triggerer":
            return [AIRFLOW, "triggerer", "--skip-serve-logs"]
        if name.startswith("worker"):
            return [
                AIRFLOW, "celery", "worker", "--skip-serve-logs", "--queues", self.config.queue,
                "--celery-hostname", f"{name}@%h", "--without-gossip", "--without-mingle",
            ]  # fmt: skip
        return [AIRFLOW, name]

    def log_file(self, name: str) -> Path:
        return self.config.home / f"{name}.log"

    def start_component(self, name: str) -> subprocess.Popen[bytes]:
        """Start one component in its own process group, its output appended to its log."""
        self.config.home.mkdir(parents=True, exist_ok=True)
        with self.log_file(name).open("ab") as out:
            proc = subprocess.Popen(
                self.command(name),
                env=self.environment(name),
                cwd=PROJECT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = proc
        return proc

    def start(self, timeout: float = 180.0) -> Self:
        """Every component, then wait until the API reports them all healthy."""
        for name in self.names():
            self.start_component(name)
        self.wait_healthy(timeout)
        return self

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal a component's whole process group (its executor's or pool's children)."""
        proc = self.processes[name]
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            proc.wait(30)
            group_gone(proc.pid)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM every group at once, SIGKILL the groups still there after ``grace`` s.
        The groups are killed even when their leader is gone (a child may remain)."""
        running = dict(self.processes)
        for proc in running.values():
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in running.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in running.values():
            _signal_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dead(self) -> list[str]:
        """Components whose process has exited."""
        return [name for name, proc in self.processes.items() if proc.poll() is not None]

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_file(name)
        text = path.read_text(errors="replace") if path.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- the REST API -----------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """One call to ``/api/v2``; the decoded JSON answer. A GET that times out is asked
        again (twice): on a loaded machine the single api-server worker can be slow."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.config.base_url}/api/v2/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        for attempt in range(3 if method == "GET" else 1):
            try:
                with urllib.request.urlopen(request, timeout=timeout) as answer:
                    return json.loads(answer.read() or b"null")
            except TimeoutError:
                if attempt == 2 or method != "GET":
                    raise
        raise AssertionError("unreachable")

    def wait_healthy(self, timeout: float = 180.0) -> dict[str, Any]:
        """Until the metadata DB and every started component report healthy (or a
        component dies: its log's tail is in the error)."""
        deadline = time.monotonic() + timeout
        wanted = {"metadatabase"} | {HEALTH_KEYS[n] for n in self.processes if n in HEALTH_KEYS}
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if dead := self.dead():
                raise RuntimeError(
                    f"{dead[0]} exited ({self.log_file(dead[0])}):\n{self.tail(dead[0])}"
                )
            try:
                health = self.api("GET", "monitor/health", timeout=5)
            except (urllib.error.URLError, OSError, ValueError):
                health = {}
            if health and all((health.get(key) or {}).get("status") == "healthy" for key in wanted):
                return health
            time.sleep(1)
        raise TimeoutError(f"Airflow not healthy after {timeout:.0f} s: {health}")

    def wait_dag(self, dag_id: str, timeout: float = 180.0, unpause: bool = True) -> None:
        """Until the dag-processor has parsed ``dag_id``; unpause it (DAGs are paused when
        created)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api("GET", f"dags/{dag_id}")
                break
            except urllib.error.HTTPError as error:
                if error.code != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(1)
        if unpause:
            self.api("PATCH", f"dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """A manual run, as the form's Trigger button makes it; its run id."""
        run = self.api("POST", f"dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        quoted = urllib.parse.quote(run_id, safe="")
        return str(self.api("GET", f"dags/{dag_id}/dagRuns/{quoted}")["state"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600.0) -> str:
        """Until the run is ``success`` or ``failed``; that state."""
        deadline = time.monotonic() + timeout
        while (state := self.run_state(dag_id, run_id)) not in FINAL_RUN_STATES:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} {run_id} still {state} after {timeout:.0f} s")
            time.sleep(1)
        return state

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run (mapped ones one per index): state, try_number,
        hostname, start and end dates."""
        quoted = urllib.parse.quote(run_id, safe="")
        found = self.api("GET", f"dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000")
        return list(found["task_instances"])


def group_gone(pgid: int, timeout: float = 15.0) -> bool:
    """Wait until no process of group ``pgid`` is left (killed children are reaped by init
    a moment after their leader); whether it is gone."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
