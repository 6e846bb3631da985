"""The upload operator's exactly-once promise under faults, with the sandbox as the oracle.

Each test runs the operator's attempts the way Airflow runs retries (a fresh ``execute``
per attempt; the task's earlier attempt died with an exception) and then asks the
sandbox's event log whether every record of the file was sent exactly once.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from airflow.sdk.exceptions import AirflowFailException

from smsdrop.airflow import operators
from smsdrop.airflow.exceptions import MTargetConfigError, MTargetTransferError
from smsdrop.airflow.hooks import MTargetHook
from smsdrop.airflow.operators import MTargetUploadOperator
from smsdrop.dropbox import RemoteState
from smsdrop.sandbox.cli import serve_command
from smsdrop.sandbox.events import events
from smsdrop.sandbox.reference import free_port
from tests.airflow.conftest import START, Keys
from tests.airflow.support import Deliveries, deliveries, write_send

NAME = "SEND-12345-20261201-0800-once.csv"
STEM = NAME.removesuffix(".csv")


def attempt(local: Path, name: str | None = None, **kwargs: object) -> dict:
    """One try of the upload task (a fresh operator, as a retry re-creates the task)."""
    task = MTargetUploadOperator(
        task_id="upload", local_path=str(local), remote_name=name, retries=3, **kwargs
    )
    return task.execute({})


def settled(sandbox, name: str = NAME) -> Deliveries:
    sandbox.settle()
    return deliveries(sandbox, name)


def test_upload_then_retry_skips_and_returns_the_same_metadata(
    sandbox, connect, tmp_path, capfd
) -> None:
    connect(sandbox.port)
    local = write_send(tmp_path, NAME, 120)
    first = attempt(local, records=120, sha256="ab" * 32)
    assert first == {
        "name": NAME,
        "stem": STEM,
        "remote_path": f"Send/{NAME}",
        "bytes": local.stat().st_size,
        "send_at": "2026-12-01T07:00:00+00:00",
        "records": 120,
        "sha256": "ab" * 32,
    }
    sandbox.wait_for("file_done", name=NAME)
    capfd.readouterr()
    again = attempt(local, records=120, sha256="ab" * 32)
    assert again == first
    assert "NOT uploading it again" in "".join(capfd.readouterr())
    assert settled(sandbox).exactly_once(120)


@pytest.mark.parametrize("state", ["csv", "lock", "done", "reject"])
def test_every_submitted_state_means_skip(sandbox, connect, tmp_path, state: str) -> None:
    """Whatever the provider has made of the name, a retry uploads nothing."""
    connect(sandbox.port)
    local = write_send(tmp_path, NAME, 10)
    # Put the file in that state by hand, under a name the provider ignores (no .csv scan
    # for .lock/.done/.reject; a .csv is taken, which is the point: it is submitted).
    (sandbox.layout.send / f"{STEM}.{state}").write_bytes(local.read_bytes())
    attempt(local)
    sandbox.settle()
    assert not (sandbox.layout.send / f"{STEM}.tmp").exists()
    received = len(sandbox.events("file_received", name=NAME))
    assert received == (1 if state == "csv" else 0)  # only the hand-made .csv was taken


def test_a_stale_tmp_is_removed_and_the_upload_starts_over(
    sandbox, connect, tmp_path, capfd
) -> None:
    connect(sandbox.port)
    local = write_send(tmp_path, NAME, 200)
    (sandbox.layout.send / f"{STEM}.tmp").write_bytes(local.read_bytes()[:1000])
    attempt(local)
    assert "left by an interrupted attempt" in "".join(capfd.readouterr())
    assert settled(sandbox).exactly_once(200)


def test_connection_cut_mid_upload_fails_then_the_retry_completes(
    sandbox, connect, proxy, tmp_path
) -> None:
    connect(proxy.port)
    local = write_send(tmp_path, NAME, 20_000)  # ~1.6 MB
    proxy.cut_next(600_000)  # well into the file data
    # Pipelined writes are acknowledged late: the cut surfaces in the writes ("failed after
    # N of M bytes") or, on a busy machine, only at the size check before the rename
    # ("handing over … the connection is gone"). Either way nothing was handed over.
    with pytest.raises(MTargetTransferError, match="failed after|connection is gone") as failed:
        attempt(local)
    assert not isinstance(failed.value, AirflowFailException)  # Airflow retries it
    assert proxy.cuts == 1
    time.sleep(0.2)  # the server closes the half-written file when it sees the cut
    sandbox.settle()
    stale = sandbox.layout.send / f"{STEM}.tmp"
    assert stale.exists() and stale.stat().st_size < local.stat().st_size
    assert not sandbox.events("file_received", name=NAME)  # nothing handed over
    attempt(local)
    assert settled(sandbox).exactly_once(20_000)


def test_crash_after_the_rename_before_returning_then_the_retry_skips(
    sandbox, connect, tmp_path, monkeypatch
) -> None:
    connect(sandbox.port)
    local = write_send(tmp_path, NAME, 300)
    real_rename = MTargetHook._rename

    def rename_then_die(self, sftp, old, new):
        real_rename(self, sftp, old, new)
        raise SystemExit("worker killed right after the rename")

    monkeypatch.setattr(MTargetHook, "_rename", rename_then_die)
    with pytest.raises(SystemExit):
        attempt(local)
    monkeypatch.setattr(MTargetHook, "_rename", real_rename)
    sandbox.wait_for("file_received", name=NAME)
    assert attempt(local)["name"] == NAME  # skipped: state is csv/lock/done
    assert settled(sandbox).exactly_once(300)


def test_the_renames_answer_lost_is_settled_by_the_state(
    sandbox, connect, tmp_path, monkeypatch
) -> None:
    """The rename reaches the server, the connection dies before its answer comes back."""
    connect(sandbox.port)
    local = write_send(tmp_path, NAME, 300)

    def rename_answer_lost(self, sftp, old, new):
        sftp._async_request(
            type(None), paramiko.sftp.CMD_EXTENDED, "posix-rename@openssh.com", old, new
        )
        time.sleep(0.3)  # the request is processed; the answer is never read
        sftp.get_channel().get_transport().close()
        raise EOFError("connection lost")

    monkeypatch.setattr(MTargetHook, "_rename", rename_answer_lost)
    with pytest.raises(MTargetTransferError, match="connection is gone"):
        attempt(local)
    monkeypatch.undo()
    connect(sandbox.port)
    attempt(local)
    assert settled(sandbox).exactly_once(300)


def test_a_retry_in_a_later_minute_uses_the_same_name(
    sandbox, connect, proxy, tmp_path, monkeypatch
) -> None:
    """The name is an input: the operator reads no clock, so a later retry cannot change it."""
    source = inspect.getsource(operators)
    for clock in ("now(", "utcnow", "time.time", "today("):
        assert clock not in source
    connect(proxy.port)
    local = write_send(tmp_path, NAME, 3000)
    proxy.cut_next(30_000)
    with pytest.raises(MTargetTransferError):
        attempt(local)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)  # the retry, a minute later
    assert attempt(local)["name"] == NAME
    monkeypatch.undo()
    assert settled(sandbox).exactly_once(3000)
    assert [p.name for p in sandbox.layout.send.iterdir()] == [f"{STEM}.done"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("SEND-12345-20261201-0800-once.tmp", "not a SEND-….csv name"),
        ("send-12345-20261201-0800-once.csv", "not a SEND file name"),
        ("ACK-12345-20261201-0800-once.csv", "not a SEND-….csv name"),
    ],
)
def test_bad_names_fail_without_retry_and_without_connecting(
    sandbox, connect, tmp_path, name: str, message: str
) -> None:
    connect(sandbox.port)
    local = write_send(tmp_path, NAME, 3)
    with pytest.raises(MTargetConfigError, match=message):
        attempt(local, name)
    assert not sandbox.events("connection_accepted")


def test_missing_or_empty_local_file_fails_without_retry(sandbox, connect, tmp_path) -> None:
    connect(sandbox.port)
    with pytest.raises(MTargetConfigError, match="does not exist"):
        attempt(tmp_path / NAME)
    (tmp_path / NAME).write_bytes(b"")
    with pytest.raises(MTargetConfigError, match="empty"):
        attempt(tmp_path / NAME)


# --- a real server process killed mid-upload ---------------------------------------------


class SandboxProcess:
    """``smsdrop sandbox serve`` in its own process, on a fixed port, to be SIGKILLed."""

    def __init__(self, root: Path, port: int, keys: Keys) -> None:
        self.root, self.port, self.keys = root, port, keys
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> SandboxProcess:
        command = serve_command(
            self.root,
            self.port,
            "--authorized-keys",
            str(self.keys.authorized),
            "--host-key",
            str(self.keys.host),
            "--start",
            START.isoformat(),
            "--poll-interval",
            "0.05",
            "--retention",
            "3650d",
            "-q",
        )
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        for _ in range(10):  # the banner ends with the event log line
            line = self.proc.stdout.readline()
            if not line or line.startswith("event log:"):
                break
        if self.proc.poll() is not None:
            raise RuntimeError("the sandbox process did not start")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def server_process(tmp_path: Path, keys: Keys) -> Iterator[SandboxProcess]:
    process = SandboxProcess(tmp_path / "root", free_port(), keys)
    yield process.start()
    process.stop()


@pytest.mark.slow
def test_server_killed_mid_upload_then_restarted_and_the_retry_completes(
    server_process: SandboxProcess, connect, tmp_path
) -> None:
    connect(server_process.port)
    local = write_send(tmp_path, NAME, 150_000)  # ~12 MB, long enough to be caught mid-way
    tmp = server_process.root / "Send" / f"{STEM}.tmp"
    failure: list[BaseException] = []

    def first_try() -> None:
        try:
            attempt(local)
        except BaseException as error:  # noqa: BLE001 - inspected below
            failure.append(error)

    uploader = threading.Thread(target=first_try)
    uploader.start()
    deadline = time.monotonic() + 30
    while not (tmp.exists() and tmp.stat().st_size > 1_000_000) and time.monotonic() < deadline:
        time.sleep(0.001)
    server_process.kill()
    uploader.join(30)
    assert failure and isinstance(failure[0], MTargetTransferError), failure
    assert tmp.stat().st_size < local.stat().st_size  # killed mid-upload

    server_process.start()  # same root, port and host key
    hook = MTargetHook()
    assert hook.remote_state(NAME).state is RemoteState.TMP
    attempt(local)  # the retry
    root = server_process.root
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = events(root, "batch_done", file=NAME)
        if done:
            break
        time.sleep(0.1)
    assert len(events(root, "file_received", name=NAME)) == 1
    assert not events(root, "file_ignored", name=NAME)
    sent = events(root, "batch_done", file=NAME)
    assert sum(b["messages"] for b in sent) == 150_000
    rows = [
        e["row"]
        for kind in ("message_sent", "message_not_sent")
        for e in events(root, kind, file=NAME)
    ]
    assert len(rows) == len(set(rows)) == 150_000
