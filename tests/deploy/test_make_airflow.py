"""``make airflow`` as a newcomer runs it, and the bootstrap's idempotent migration.

The service test runs ``python -m smsdrop.deploy`` (what ``make airflow`` runs after the
bootstrap) with its folder, ports and audience size moved by environment variables,
triggers ``sms_campaign`` over the REST API as the form does, waits for the ACK's load,
then Ctrl-C (SIGINT): every process it started is gone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smsdrop.deploy.stack import AirflowStack, StackConfig, load_or_create_secrets
from smsdrop.warehouse import DuckDBWarehouse
from tests.deploy.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_secrets_are_made_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secrets.json"
    first = load_or_create_secrets(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_secrets(path) == first
    assert len({first["jwt_secret"], first["fernet_key"], first["api_secret_key"]}) == 3
    env = AirflowStack(
        StackConfig(home=tmp_path / "var", sql_alchemy_conn="sqlite://")
    ).environment()
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == first["jwt_secret"]
    assert env["AIRFLOW__CORE__FERNET_KEY"] == first["fernet_key"]
    from cryptography.fernet import Fernet  # the key is one Fernet accepts

    assert Fernet(first["fernet_key"]).decrypt(Fernet(first["fernet_key"]).encrypt(b"x")) == b"x"


@pytest.mark.slow
def test_the_bootstrap_migrates_a_db_file_an_interrupted_run_left(tmp_path: Path) -> None:
    """Issue 10 part 6: a metadata DB file that exists but was never migrated."""
    db = tmp_path / "airflow.db"
    db.write_bytes(b"")  # what an interrupted first `airflow db migrate` can leave
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}"}
    check = [AIRFLOW, "db", "check-migrations", "-t", "0"]
    assert (
        subprocess.run(check, env=env, cwd=ROOT, capture_output=True, check=False).returncode != 0
    )
    made = subprocess.run(
        ["make", "--no-print-directory", "migrate"],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert (
        subprocess.run(check, env=env, cwd=ROOT, capture_output=True, check=False).returncode == 0
    )


@pytest.mark.slow
def test_make_airflow_runs_a_campaign_from_a_trigger_and_stops_everything(tmp_path: Path) -> None:
    service, port = tmp_path / "service", free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(ROOT),
        "SMSDROP_SERVICE_DIR": str(service),
        "SMSDROP_API_PORT": str(port),
        "SMSDROP_SANDBOX_PORT": "0",
        "SMSDROP_DEMO_ROWS": "3000",
    }
    out = tmp_path / "make-airflow.out"
    with out.open("wb") as sink:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "smsdrop.deploy"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while "smsdrop is running" not in out.read_text():
            assert launcher.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(1)
        banner = out.read_text()
        assert f"http://localhost:{port}" in banner and str(service / "secrets.json") in banner
        stack = AirflowStack(StackConfig(home=service, sql_alchemy_conn="", api_port=port))
        conf = json.loads(re.search(r"^\s+(\{\"campaign_id\".*\})$", banner, re.MULTILINE)[1])
        run_id = stack.trigger("sms_campaign", conf)
        assert stack.wait_run("sms_campaign", run_id, timeout=420) == "success"
        with DuckDBWarehouse(service / "warehouse.duckdb", read_only=True) as warehouse:
            stats = warehouse.campaign_stats(conf["campaign_id"])
        assert 2_500 < stats["submitted"] == stats["acked"] and stats["pending"] == 0, stats
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(90) == 0, out.read_text()[-3000:]
    finally:  # on failure too: Ctrl-C first (it stops the components), then by group
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGINT)
            try:
                launcher.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
        for pid in started_by(service):
            _kill_group(pid)
    assert "stopped" in out.read_text().splitlines()[-1]
    assert not re.search(r"\+33\d{9}", out.read_text())  # no full number on screen
    time.sleep(2)
    assert started_by(service) == [], "processes left behind"


def started_by(service: Path) -> list[int]:
    """Processes still running with this service's folder in their environment."""
    marker = f"SMSDROP_SERVICE_DIR={service}".encode()
    left = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    left.append(int(proc.name))
            except OSError:
                continue
    return left


def _kill_group(pid: int) -> None:
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except ProcessLookupError:
        pass
