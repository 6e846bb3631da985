"""MTargetHook against the sandbox (and OpenSSH sshd when present): state, upload, reports."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from airflow.providers.ssh.hooks.ssh import SSHHook

from smsdrop.airflow.exceptions import MTargetConfigError
from smsdrop.airflow.hooks import (
    FAST_CIPHERS,
    MTargetHook,
    RemoteState,
    latest_state,
    send_name,
)
from smsdrop.naming import FileKind
from smsdrop.reports import parse_ack, parse_replies_from
from smsdrop.sandbox.reference import PrivateSshd, find_sshd
from tests.airflow.support import deliveries, msisdns, write_send

NAME = "SEND-12345-20261201-0800-hook.csv"
needs_sshd = pytest.mark.skipif(find_sshd() is None, reason="sshd not installed (.ci/ensure-sshd)")


def test_latest_state_prefers_the_most_advanced_file() -> None:
    assert latest_state({}) is RemoteState.ABSENT
    assert latest_state({"tmp": 1}) is RemoteState.TMP
    assert latest_state({"tmp": 1, "done": 5}) is RemoteState.DONE
    assert latest_state({"csv": 5, "lock": 5}) is RemoteState.LOCK
    assert [s for s in RemoteState if s.submitted] == ["csv", "lock", "done", "reject"]


@pytest.mark.parametrize(
    "name",
    [
        "SEND-12345-20261201-0800-x.tmp",
        "ACK-12345-20261201-0800-x.csv",
        "SEND12345-20261201-0800-x.csv",
        "x.csv",
    ],
)
def test_only_send_csv_names_are_accepted(name: str) -> None:
    with pytest.raises(MTargetConfigError):
        send_name(name)


def test_upload_goes_tmp_then_csv_and_the_state_follows(sandbox, connect, tmp_path: Path) -> None:
    connect(sandbox.port)
    hook = MTargetHook()
    local = write_send(tmp_path, NAME, 300)
    assert hook.remote_state(NAME).state is RemoteState.ABSENT
    result = hook.upload_atomic(local, NAME)
    assert result["bytes"] == local.stat().st_size
    assert result["checksum"] is None  # asyncssh's server offers no check-file
    sandbox.wait_for("file_done", name=NAME)
    found = hook.remote_state(NAME)
    assert found.state is RemoteState.DONE and found.size == local.stat().st_size
    assert not found.stale_tmp
    assert hook.remote_state(NAME.removesuffix(".csv")).state is RemoteState.DONE  # a stem too
    sandbox.settle()
    assert deliveries(sandbox, NAME).exactly_once(300)


def test_one_managed_connection_serves_nested_calls(sandbox, connect) -> None:
    connect(sandbox.port)
    hook = MTargetHook()
    with hook.get_managed_conn() as sftp:
        for _ in range(3):
            hook.remote_state(NAME)
        assert hook.get_managed_conn is not None and sftp.get_channel().active
    with hook.get_managed_conn():  # reopened after the last close (FIELD-NOTES trap)
        assert hook.remote_state(NAME).state is RemoteState.ABSENT
    assert len(sandbox.events("auth_accepted")) == 2
    client = hook.get_conn()  # the provider's unmanaged API goes through our connect too
    assert client.get_channel().get_transport().local_cipher in FAST_CIPHERS
    assert sorted(client.listdir(".")) == ["Report", "Send"]
    hook.close_conn()


def test_send_and_report_folders_come_from_the_extras(make_sandbox, connect, tmp_path) -> None:
    sandbox = make_sandbox()
    connect(sandbox.port, send_dir="Report", report_dir="Send")  # swapped on purpose
    hook = MTargetHook()
    assert (hook.send_dir, hook.report_dir) == ("Report", "Send")
    hook.upload_atomic(write_send(tmp_path, NAME, 3), NAME)
    assert (sandbox.layout.report / NAME).exists()  # not processed: not in Send/
    assert MTargetHook(send_dir="Send").send_dir == "Send"


@pytest.mark.parametrize("extra", ["no_host_key_check", "allow_host_key_change"])
def test_host_key_checks_cannot_be_switched_off(sandbox, connect, extra: str) -> None:
    connect(sandbox.port, **{extra: "true"})
    with pytest.raises(MTargetConfigError, match=extra):
        MTargetHook()


def test_reports_listed_downloaded_read_incrementally_and_deleted(
    sandbox, connect, tmp_path: Path
) -> None:
    connect(sandbox.port)
    hook = MTargetHook()
    hook.upload_atomic(write_send(tmp_path, NAME, 50), NAME)
    sandbox.wait_for("batch_done", file=NAME)
    numbers = msisdns(50)
    first = sandbox.reply(numbers[3], "STOP")
    ack_name = send_name(NAME).with_kind(FileKind.ACK).name
    stop_name = send_name(NAME).with_kind(FileKind.STOP).name
    assert stop_name in first["reports"]
    assert hook.list_reports(FileKind.STOP) == [stop_name]
    chunk = parse_replies_from(hook.read_from(f"Report/{stop_name}", 0), stop_name, 0)
    assert list(chunk.frame["msisdn"]) == [numbers[3]]
    sandbox.reply(numbers[7], "arret")
    more = hook.read_from(f"Report/{stop_name}", chunk.next_offset)
    later = parse_replies_from(more, stop_name, chunk.next_offset)
    assert list(later.frame["msisdn"]) == [numbers[7]]  # only what is new
    assert hook.read_from(f"Report/{stop_name}", later.next_offset) == b""
    sandbox.advance(timedelta(days=1, minutes=1))
    sandbox.wait_for("report_written", file=NAME)
    assert ack_name in hook.list_reports()
    assert hook.list_reports(FileKind.ACK) == [ack_name]
    size = hook.download_report(ack_name, tmp_path / "ack.csv")
    assert size == hook.report_size(ack_name) == (tmp_path / "ack.csv").stat().st_size
    assert len(parse_ack((tmp_path / "ack.csv").read_bytes(), ack_name)) == 50
    assert not (tmp_path / "ack.csv.partial").exists()
    hook.delete_report(ack_name)
    assert hook.report_size(ack_name) is None
    assert ack_name not in hook.list_reports()


def test_aes_gcm_is_negotiated_with_openssh(tmp_path: Path, keys, connect) -> None:
    """Paramiko alone picks aes128-ctr against OpenSSH; the hook asks for AES-GCM."""
    if find_sshd() is None:
        pytest.skip("sshd not installed (.ci/ensure-sshd)")
    drop = tmp_path / "drop"
    (drop / "Send").mkdir(parents=True)
    with PrivateSshd(tmp_path / "sshd", keys.authorized) as sshd:
        connect(
            sshd.port,
            login=sshd.user,
            host_key=" ".join(sshd.known_hosts_line().split()[1:]),
            send_dir=str(drop / "Send"),
        )
        hook = MTargetHook()
        local = write_send(tmp_path, NAME, 20_000)
        with hook.get_managed_conn() as sftp:
            assert sftp.get_channel().get_transport().local_cipher in FAST_CIPHERS
            hook.upload_atomic(local, NAME)
        assert (drop / "Send" / NAME).read_bytes() == local.read_bytes()
        assert not (drop / "Send" / NAME.replace(".csv", ".tmp")).exists()
        plain = SSHHook(ssh_conn_id="mtarget_default")
        plain.look_for_keys = False
        with plain.get_conn() as client:
            assert client.get_transport().local_cipher not in FAST_CIPHERS


def test_a_server_without_aes_gcm_gets_paramikos_default(make_sandbox, connect, tmp_path) -> None:
    sandbox = make_sandbox(ciphers=("aes128-ctr", "aes256-ctr"))
    connect(sandbox.port)
    hook = MTargetHook()
    with hook.get_managed_conn() as sftp:
        assert sftp.get_channel().get_transport().local_cipher == "aes128-ctr"
        hook.upload_atomic(write_send(tmp_path, NAME, 10), NAME)
    sandbox.settle()
    assert deliveries(sandbox, NAME).exactly_once(10)
    with MTargetHook().get_managed_conn():  # the next hook goes straight to the default
        pass
    assert len(sandbox.events("connection_accepted")) == 3  # one refused handshake, two sessions
