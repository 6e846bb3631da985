"""MTargetHook against the sandbox (and OpenSSH sshd when present): state, upload, reports."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.providers.ssh.hooks.ssh import SSHHook

from smsdrop.airflow import sftp_session
from smsdrop.airflow.exceptions import MTargetConfigError, MTargetTransferError
from smsdrop.airflow.hooks import MTargetHook, send_name
from smsdrop.airflow.sftp_session import REQUESTS_PER_SEND
from smsdrop.airflow.ssh_rules import FAST_CIPHERS
from smsdrop.dropbox import RemoteState
from smsdrop.naming import FileKind
from smsdrop.reports import parse_ack, parse_replies_from
from smsdrop.sandbox.reference import PrivateSshd, find_sshd
from tests.airflow.support import deliveries, msisdns, write_send

NAME = "SEND-12345-20261201-0800-hook.csv"
needs_sshd = pytest.mark.skipif(find_sshd() is None, reason="sshd not installed (.ci/ensure-sshd)")


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
    connect(sandbox.port, send_dir="Report", report_dir="/Send/")  # swapped on purpose
    hook = MTargetHook()
    assert (hook.send_dir, hook.report_dir) == ("Report", "/Send")
    with pytest.raises(MTargetTransferError, match="upload of Report/"):
        hook.upload_atomic(write_send(tmp_path, NAME, 3), NAME)  # the provider's folder
    assert not list(sandbox.layout.report.iterdir())
    hook = MTargetHook(send_dir="/Send/", report_dir="Report")
    hook.upload_atomic(write_send(tmp_path, NAME, 3), NAME)
    assert sandbox.wait_for("file_done", name=NAME)[0]["records"] == 3


@pytest.mark.parametrize("extra", ["no_host_key_check", "allow_host_key_change"])
def test_host_key_checks_cannot_be_switched_off(sandbox, connect, extra: str) -> None:
    connect(sandbox.port, **{extra: "true"})
    with pytest.raises(MTargetConfigError, match=extra):
        MTargetHook()


@pytest.mark.parametrize(
    ("extra", "value"),
    [
        ("request_size", "abc"),
        ("request_size", 0),
        ("request_size", 10_000_000),  # OpenSSH drops the session above 261120
        ("upload_streams", 3),
        ("upload_streams", True),
        ("op_timeout", -1),
        ("connect_attempts", "nan"),
    ],
)
def test_a_numeric_extra_out_of_its_range_is_refused_by_name(
    sandbox, connect, extra: str, value: object
) -> None:
    connect(sandbox.port, **{extra: value})
    with pytest.raises(MTargetConfigError, match=f"extra {extra}=.* is refused: a number from"):
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


@contextmanager
def _drop_sshd(tmp_path: Path, keys, connect, options=(), **extra) -> Iterator[Path]:
    """A private sshd with a drop folder, the connection pointed at it; yields ``Send/``."""
    send = tmp_path / "drop" / "Send"
    send.mkdir(parents=True)
    with PrivateSshd(tmp_path / "sshd", keys.authorized, options=options) as sshd:
        connect(
            sshd.port,
            login=sshd.user,
            host_key=" ".join(sshd.known_hosts_line().split()[1:]),
            send_dir=str(send),
            **extra,
        )
        yield send


@pytest.fixture
def halves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Small files go up in two sessions too; records each two-session upload's size."""
    monkeypatch.setattr(sftp_session, "TWO_STREAMS_FROM", 1000)
    real = sftp_session._copy_in_two
    seen: list[int] = []

    def spy(fd, first, second, size):
        seen.append(size)
        real(fd, first, second, size)

    monkeypatch.setattr(sftp_session, "_copy_in_two", spy)
    return seen


@needs_sshd
@pytest.mark.parametrize(
    ("options", "extra", "two"),
    [
        ((), {}, True),
        (("MaxSessions 1",), {}, False),  # the second session is refused: one stream
        ((), {"upload_streams": "1"}, False),
    ],
    ids=["two sessions", "one session allowed", "upload_streams 1"],
)
def test_many_small_write_requests_arrive_exact_and_the_session_goes_on(
    tmp_path: Path, keys, connect, halves, options, extra, two: bool
) -> None:
    """The upload's own WRITE requests (several sends, a short last request, in one or two
    sessions) leave the exact bytes, and the session's next requests get their answers."""
    local = write_send(tmp_path, NAME, 401)
    size = local.stat().st_size
    assert size > 3 * REQUESTS_PER_SEND * 1000 and size % 1000, size
    with _drop_sshd(tmp_path, keys, connect, options, request_size=1000, **extra) as send:
        hook = MTargetHook()
        with hook.get_managed_conn():
            assert hook.upload_atomic(local, NAME)["bytes"] == size
            found = hook.remote_state(NAME)
            assert (found.state, found.size) == (RemoteState.CSV, size)
        assert (send / NAME).read_bytes() == local.read_bytes()
    assert halves == ([size] if two else [])


@needs_sshd
@pytest.mark.parametrize("failing", ["first", "second"])
def test_a_failing_half_fails_the_upload_and_stops_the_other(
    tmp_path: Path, keys, connect, halves, monkeypatch, failing: str
) -> None:
    """Either session's error fails the upload (nothing renamed); the other half stops."""
    real = sftp_session._WriteStream.copy

    def copy(stream, fd, start, stop):
        if (start == 0) == (failing == "first"):
            raise OSError(f"{failing} half refused")
        real(stream, fd, start, stop)

    monkeypatch.setattr(sftp_session._WriteStream, "copy", copy)
    local = write_send(tmp_path, NAME, 2000)
    with _drop_sshd(tmp_path, keys, connect, request_size=1000) as send:
        with pytest.raises(MTargetTransferError, match=f"failed after .*{failing} half refused"):
            MTargetHook().upload_atomic(local, NAME)
        assert not (send / NAME).exists()
    assert not [t for t in threading.enumerate() if t.name == "sftp-upload-second-half"]


def test_a_refused_write_fails_the_upload_with_the_servers_reason(
    make_sandbox, connect, tmp_path
) -> None:
    """A WRITE answered with an error (the sandbox's quota) fails the upload, not the rename."""
    sandbox = make_sandbox(quota=50_000)
    connect(sandbox.port)
    hook = MTargetHook()
    with pytest.raises(MTargetTransferError, match=r"upload of .* failed after .*quota"):
        hook.upload_atomic(write_send(tmp_path, NAME, 3000), NAME)
    assert not sandbox.events("file_received", name=NAME)


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


# --- what the hook offers: credentials and algorithms (issue 9) ---------------------------

WEAK = ("-cbc", "3des", "md5", "arcfour", "blowfish")


def _fingerprint(path: Path) -> str:
    import asyncssh

    return asyncssh.read_public_key(str(path) + ".pub").get_fingerprint()


@pytest.fixture
def agent(tmp_path: Path):
    """A real ssh-agent (its own process group) holding one key; yields (socket, key)."""
    import os
    import shutil
    import signal
    import subprocess

    from tests.sandboxes import write_key

    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("OpenSSH ssh-agent not installed")
    folder = tmp_path / "agent"
    folder.mkdir()
    key = write_key(folder, "agent")
    sock = folder / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            import time

            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True, capture_output=True)
        yield sock, key
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def _authorize(tmp_path: Path, *keys: Path) -> Path:
    authorized = tmp_path / "authorized_extra"
    authorized.write_text("".join(Path(str(k) + ".pub").read_text() for k in keys))
    return authorized


def _async_login(conn_id: str = "mtarget_default") -> None:
    import asyncio

    from smsdrop.airflow.async_hook import MTargetHookAsync

    async def go() -> None:
        async with MTargetHookAsync(sftp_conn_id=conn_id).get_managed_conn() as sftp:
            await sftp.listdir(".")

    asyncio.run(go())


def test_agent_keys_are_never_offered_unless_asked(
    make_sandbox, connect, keys, tmp_path, agent, monkeypatch
) -> None:
    import asyncssh

    from smsdrop.airflow.exceptions import MTargetAuthError

    sock, agent_key = agent
    sandbox = make_sandbox(authorized_keys=_authorize(tmp_path, agent_key), password_file=None)
    connect(sandbox.port, key_file=str(keys.stranger))
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))  # after connect(), which removes it
    with pytest.raises(MTargetAuthError):
        MTargetHook().list_reports()
    with pytest.raises(asyncssh.PermissionDenied):
        _async_login()
    offered = {e["key"] for e in sandbox.events("auth_failed")}
    assert offered == {_fingerprint(keys.stranger)}  # the agent's key never reached it
    assert not sandbox.events("auth_accepted")
    connect(sandbox.port, key_file=None, allow_agent=True)  # asked: the agent is used
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
    assert MTargetHook().list_reports() == []
    _async_login()
    assert {e["key"] for e in sandbox.events("auth_accepted")} == {_fingerprint(agent_key)}


def test_keys_in_home_ssh_are_never_offered_unless_asked(
    make_sandbox, connect, keys, tmp_path, monkeypatch
) -> None:
    import asyncssh

    from smsdrop.airflow.exceptions import MTargetAuthError
    from tests.sandboxes import write_key

    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    found = write_key(home / ".ssh", "ed25519")  # ~/.ssh/id_ed25519, what clients look for
    sandbox = make_sandbox(authorized_keys=_authorize(tmp_path, found))
    monkeypatch.setenv("HOME", str(home))
    connect(sandbox.port, key_file=None, password="wrong-password")
    with pytest.raises(MTargetAuthError):
        MTargetHook().list_reports()
    with pytest.raises(asyncssh.PermissionDenied):
        _async_login()
    assert [e["method"] for e in sandbox.events("auth_failed")] == ["password", "password"]
    assert not sandbox.events("auth_accepted")
    connect(sandbox.port, key_file=None, look_for_keys=True)  # asked: ~/.ssh is searched
    assert MTargetHook().list_reports() == []
    _async_login()
    assert {e["key"] for e in sandbox.events("auth_accepted")} == {_fingerprint(found)}


@pytest.fixture
def cut_logins(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sandbox drops the connection (no answer, no disconnect message) when it gets the
    key of a login: a provider that dies mid-login. One entry per cut still to make (one at
    first); a test appends one for another cut."""
    from smsdrop.sandbox.server import SandboxSSHServer

    cuts = ["cut"]
    answer = SandboxSSHServer.validate_public_key

    async def validate_public_key(self: SandboxSSHServer, username: str, key: object) -> bool:
        if cuts:
            cuts.pop()
            self._conn.abort()  # the TCP connection goes; the login is never answered
            return False
        return await answer(self, username, key)

    monkeypatch.setattr(SandboxSSHServer, "validate_public_key", validate_public_key)
    return cuts


def test_a_connection_cut_during_the_login_is_retried_not_taken_for_a_refusal(
    sandbox, connect, cut_logins
) -> None:
    """paramiko calls a transport that died while the login waited an authentication
    failure; the hook tells it from a refusal and tries again (a refusal never is)."""
    from smsdrop.airflow.exceptions import MTargetAuthError

    connect(sandbox.port)  # one attempt: the cut is the hook's error
    with pytest.raises(MTargetTransferError, match="during the login") as raised:
        MTargetHook().list_reports()
    assert not isinstance(raised.value, MTargetAuthError)
    cut_logins.append("cut")
    connect(sandbox.port, connect_attempts=2)
    assert MTargetHook().list_reports() == []  # the second attempt logs in
    assert cut_logins == []
    assert not sandbox.events("auth_failed")  # nothing was ever refused
    assert len(sandbox.events("auth_accepted")) == 1


def test_a_refusal_then_a_disconnect_is_a_refusal_and_not_retried(
    make_sandbox, connect, keys
) -> None:
    """The sandbox cuts a connection at its first refused login (``max_auth_failures=1``):
    the transport is dead when paramiko raises, yet the server did answer."""
    from smsdrop.airflow.exceptions import MTargetAuthError

    sandbox = make_sandbox(max_auth_failures=1)
    connect(sandbox.port, key_file=str(keys.stranger), connect_attempts=3)
    with pytest.raises(MTargetAuthError, match="Not retried"):
        MTargetHook().list_reports()
    assert len(sandbox.events("auth_failed")) == 1
    assert len(sandbox.events("auth_limit")) == 1  # it did cut the connection


def test_cbc_3des_and_md5_are_never_negotiated_with_the_sandbox(make_sandbox, connect) -> None:
    import asyncssh

    old = make_sandbox(ciphers=("aes128-cbc", "aes256-cbc", "3des-cbc"))
    connect(old.port)
    with pytest.raises(MTargetTransferError, match="CBC, 3DES and HMAC-MD5 are never used"):
        MTargetHook().list_reports()
    # Both ends find no common cipher at once: the one that closes first is seen by the
    # other as ConnectionLost (a loaded machine: 1 in ~3 full runs), so the async hook's
    # refusal is proved by either end having said KeyExchangeFailed.
    with pytest.raises((asyncssh.KeyExchangeFailed, asyncssh.ConnectionLost)) as refused:
        _async_login()
    closed = old.wait_for("connection_closed", count=3)  # the sync hook's two, the async's
    assert refused.type is asyncssh.KeyExchangeFailed or closed[2]["error"] == "KeyExchangeFailed"
    assert not old.events("auth_accepted") and not old.events("auth_failed")
    mixed = make_sandbox(ciphers=("3des-cbc", "aes128-cbc", "aes256-ctr"))
    connect(mixed.port)
    with MTargetHook().get_managed_conn() as sftp:
        assert sftp.get_channel().get_transport().local_cipher == "aes256-ctr"


@needs_sshd
def test_the_hooks_offer_no_weak_algorithm_to_openssh(tmp_path: Path, keys, connect) -> None:
    """sshd logs each client's proposal: the sync hook's two (AES-GCM, then its fallback)
    and the async hook's hold no CBC, 3DES or MD5, against a server offering only those."""
    import asyncssh

    with PrivateSshd(
        tmp_path / "sshd",
        keys.authorized,
        options=["Ciphers aes128-cbc,3des-cbc", "MACs hmac-md5,hmac-md5-96"],
        log_level="DEBUG2",
    ) as sshd:
        connect(sshd.port, login=sshd.user, host_key=" ".join(sshd.known_hosts_line().split()[1:]))
        with pytest.raises(MTargetTransferError, match="no acceptable|Incompatible|cipher"):
            MTargetHook().list_reports()
        # Refused at the key exchange. asyncssh says KeyExchangeFailed when it sees the
        # mismatch first, ConnectionLost when sshd (another process) closed first, which a
        # loaded machine (`pytest -n`) makes common: sshd's log below says why, either way.
        with pytest.raises((asyncssh.KeyExchangeFailed, asyncssh.ConnectionLost)):
            _async_login()
        import time

        time.sleep(0.5)  # sshd writes its log from the per-connection process
        proposals = sshd.client_proposals()
        refusals = sshd.log_path.read_text(errors="replace").count("no matching cipher found")
    assert refusals == len(proposals), "each proposal refused over its ciphers"
    assert len(proposals) == 3, proposals
    gcm_only, fallback, asynchronous = proposals
    assert gcm_only["ciphers"] == list(FAST_CIPHERS)
    assert (
        "aes128-ctr" in fallback["ciphers"] and "aes256-gcm@openssh.com" in asynchronous["ciphers"]
    )
    for proposal in proposals:
        offered = proposal["ciphers"] + proposal["MACs"]
        assert not [name for name in offered if any(mark in name for mark in WEAK)], proposal
        assert not [k for k in proposal["KEX algorithms"] if k.endswith("-sha1")], proposal


@pytest.fixture
def slow_logins(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sandbox answers a login's key only after the given seconds (one entry per slow
    login still to make): a provider too loaded to answer in time."""
    import asyncio

    from smsdrop.sandbox.server import SandboxSSHServer

    delays = [3.0]
    answer = SandboxSSHServer.validate_public_key

    async def validate_public_key(self: SandboxSSHServer, username: str, key: object) -> bool:
        if delays:
            await asyncio.sleep(delays.pop())
        return await answer(self, username, key)

    monkeypatch.setattr(SandboxSSHServer, "validate_public_key", validate_public_key)
    return delays


def test_a_login_not_answered_in_time_is_retried_not_taken_for_a_refusal(
    sandbox, connect, slow_logins
) -> None:
    """paramiko calls a login unanswered within ``auth_timeout`` an authentication failure
    ("Authentication timeout."); the hook tells it from a refusal and tries again."""
    from smsdrop.airflow.exceptions import MTargetAuthError

    connect(sandbox.port)  # one attempt: the timeout is the hook's error
    hook = MTargetHook()
    hook.auth_timeout = 1
    with pytest.raises(MTargetTransferError, match="did not answer the login within 1 s") as raised:
        hook.list_reports()
    assert not isinstance(raised.value, MTargetAuthError)
    slow_logins.append(3.0)
    connect(sandbox.port, connect_attempts=2)
    hook = MTargetHook()
    hook.auth_timeout = 1
    assert hook.list_reports() == []  # the second attempt is answered at once
    assert slow_logins == []
    assert not sandbox.events("auth_failed")  # nothing was ever refused
