"""Refusals: unknown or changed host key, wrong key, wrong password.

Each is refused with a message that says which (host and fingerprints, or the login method),
raises an ``AirflowFailException`` (Airflow does not retry it), and costs the server exactly
one connection and at most one login attempt: no retry storm that could lock the account.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pytest
from airflow.sdk.exceptions import AirflowFailException

from smsdrop.airflow.exceptions import MTargetAuthError, MTargetHostKeyError
from smsdrop.airflow.hooks import MTargetHook
from smsdrop.airflow.operators import MTargetUploadOperator
from smsdrop.airflow.sensors import MTargetFileStatusSensor
from smsdrop.airflow.triggers import MTargetFileStatusTrigger
from tests.airflow.support import write_send

NAME = "SEND-12345-20261201-0800-access.csv"


def fingerprint(path: Path) -> str:
    return asyncssh.read_public_key(str(path) + ".pub").get_fingerprint()


def attempts(sandbox) -> tuple[int, int, int]:
    """(connections, failed logins, successful logins) seen by the sandbox."""
    sandbox.settle()
    return (
        len(sandbox.events("connection_accepted")),
        len(sandbox.events("auth_failed")),
        len(sandbox.events("auth_accepted")),
    )


def upload(tmp_path: Path) -> MTargetUploadOperator:
    """An upload task with retries: none may be used for a refusal."""
    write_send(tmp_path, NAME, 5)
    return MTargetUploadOperator(task_id="upload", local_path=str(tmp_path / NAME), retries=5)


def test_unknown_host_key_is_refused_naming_host_and_fingerprint(sandbox, connect, keys, tmp_path):
    connect(sandbox.port, host_key=None)
    with pytest.raises(MTargetHostKeyError) as caught:
        upload(tmp_path).execute({})
    message = str(caught.value)
    assert f"127.0.0.1:{sandbox.port}" in message
    assert fingerprint(keys.host) in message  # what the server presents, to check out of band
    assert "no host key pinned" in message
    assert isinstance(caught.value, AirflowFailException)
    connections, failed, logged_in = attempts(sandbox)
    assert (failed, logged_in) == (0, 0)  # no credentials were ever offered
    assert connections == 1  # the key exchange that read the fingerprint
    assert not list(sandbox.layout.send.iterdir())


def test_changed_host_key_is_refused_with_both_fingerprints(sandbox, connect, keys, tmp_path):
    connect(sandbox.port, host_key=keys.public(keys.other_host))
    with pytest.raises(MTargetHostKeyError) as caught:
        upload(tmp_path).execute({})
    message = str(caught.value)
    assert "CHANGED" in message and f"127.0.0.1:{sandbox.port}" in message
    assert fingerprint(keys.host) in message and fingerprint(keys.other_host) in message
    assert attempts(sandbox) == (1, 0, 0)


def test_a_pinned_key_of_another_type_is_refused_too(sandbox, connect, keys, tmp_path):
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    connect(sandbox.port, host_key=" ".join(rsa.export_public_key().decode().split()[:2]))
    with pytest.raises(MTargetHostKeyError) as caught:
        upload(tmp_path).execute({})
    message = str(caught.value)
    assert "CHANGED" in message and fingerprint(keys.host) in message
    assert rsa.get_fingerprint() in message and "ssh-rsa" in message
    assert attempts(sandbox)[1:] == (0, 0)


def test_wrong_key_is_refused_once_and_says_key(sandbox, connect, keys, tmp_path):
    connect(sandbox.port, key_file=str(keys.stranger))
    with pytest.raises(MTargetAuthError) as caught:
        upload(tmp_path).execute({})
    message = str(caught.value)
    assert "key file" in message and str(keys.stranger) in message
    assert "wrong key" in message and "password" not in message.split("refused", 1)[1][:40]
    assert isinstance(caught.value, AirflowFailException)
    assert attempts(sandbox) == (1, 1, 0)


def test_wrong_password_is_refused_once_and_says_password(sandbox, connect, keys, tmp_path):
    connect(sandbox.port, key_file=None, password="not-the-password")
    with pytest.raises(MTargetAuthError) as caught:
        upload(tmp_path).execute({})
    message = str(caught.value)
    assert "refused password" in message and "wrong password" in message
    assert "not-the-password" not in message
    assert attempts(sandbox) == (1, 1, 0)


def test_password_and_inline_private_key_logins_work(sandbox, connect, keys) -> None:
    connect(sandbox.port, key_file=None, password=keys.password)
    assert MTargetHook().list_reports() == []
    connect(sandbox.port, key_file=None, private_key=keys.client.read_text())
    assert MTargetHook().list_reports() == []
    assert attempts(sandbox)[1:] == (0, 2)


def test_a_refused_login_fails_a_sensor_and_its_trigger_without_retry(sandbox, connect, keys):
    connect(sandbox.port, key_file=None, password="nope")
    sensor = MTargetFileStatusSensor(task_id="status", name=NAME, retries=5)
    with pytest.raises(MTargetAuthError):
        sensor.execute({})  # the check before deferring fails in the worker at once
    trigger = MTargetFileStatusTrigger(name=NAME, folder="Send", poll_interval=0.01)

    async def first_event():
        async for fired in trigger.run():
            return fired.payload

    fired = asyncio.run(first_event())
    assert (fired["status"], fired["reason"]) == ("error", "auth")
    with pytest.raises(MTargetAuthError):
        sensor.execute_complete({}, fired)
    connect(sandbox.port, host_key=keys.public(keys.other_host))
    fired = asyncio.run(first_event())
    assert (fired["status"], fired["reason"]) == ("error", "host_key")
    assert fingerprint(keys.host) in fired["message"] and str(sandbox.port) in fired["message"]
    with pytest.raises(MTargetHostKeyError):
        sensor.execute_complete({}, fired)
    _, failed, logged_in = attempts(sandbox)
    assert (failed, logged_in) == (2, 0)  # one refused login per path, never repeated


def test_known_hosts_none_is_refused_on_both_sides(sandbox, connect, keys) -> None:
    """``known_hosts: none`` is how the async SFTP hook spells "no host key check": the sync
    hook refuses it, and the trigger fails at once (no retry) without connecting."""
    from smsdrop.airflow.exceptions import MTargetConfigError

    connect(sandbox.port, known_hosts="none")
    with pytest.raises(MTargetConfigError, match="known_hosts=none"):
        MTargetHook()
    trigger = MTargetFileStatusTrigger(name=NAME, folder="Send", poll_interval=0.01)

    async def first_event():
        async for fired in trigger.run():
            return fired.payload

    fired = asyncio.run(first_event())
    assert (fired["status"], fired["reason"]) == ("error", "host_key")
    assert "known_hosts=none" in fired["message"]
    sensor = MTargetFileStatusSensor(task_id="status", name=NAME, retries=5)
    with pytest.raises(MTargetHostKeyError):
        sensor.execute_complete({}, fired)
    connect(sandbox.port, host_key=None, known_hosts="NONE ")
    fired = asyncio.run(first_event())
    assert fired["reason"] == "host_key"
    assert attempts(sandbox) == (0, 0, 0)  # nothing was ever sent to the server


def test_home_known_hosts_never_vouches_for_the_server(sandbox, connect, tmp_path, monkeypatch):
    """A worker's ``~/.ssh/known_hosts`` that lists the server is not a pin: both hooks
    refuse an unpinned connection, asking for the host_key extra."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(sandbox.known_hosts_line() + "\n")
    monkeypatch.setenv("HOME", str(home))
    connect(sandbox.port, host_key=None)
    with pytest.raises(MTargetHostKeyError, match="no host key pinned"):
        MTargetHook().list_reports()
    trigger = MTargetFileStatusTrigger(name=NAME, folder="Send", poll_interval=0.01)

    async def first_event():
        async for fired in trigger.run():
            return fired.payload

    fired = asyncio.run(first_event())
    assert (fired["status"], fired["reason"]) == ("error", "host_key")
    assert attempts(sandbox)[1:] == (0, 0)  # no credential offered to an unverified server
