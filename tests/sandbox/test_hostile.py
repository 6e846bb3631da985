"""Clients that do it wrong, or on purpose: the sandbox stays correct and inside its root."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncssh
import paramiko
import pytest

from tests.sandbox.conftest import (
    Keys,
    MakeSandbox,
    connect_kwargs,
    listing,
    mobiles,
    records,
    run_sftp,
)

NAME = "SEND-12345-20261201-0800-evil.csv"
TMP = "SEND-12345-20261201-0800-evil.tmp"


def test_file_renamed_while_still_written_is_never_half_read(sandbox, keys: Keys) -> None:
    data = records(mobiles(1000))
    half = data.index(b"\r\n", len(data) // 2) + 2

    async def action(sftp: asyncssh.SFTPClient) -> None:
        async with sftp.open(f"Send/{TMP}", "wb") as handle:
            await handle.write(data[:half], 0)
            await sftp.posix_rename(f"Send/{TMP}", f"Send/{NAME}")  # handle still open
            await asyncio.to_thread(sandbox.settle)  # every scan has had its chance
            await asyncio.to_thread(sandbox.wait_for, "file_waiting", name=NAME)
            assert not sandbox.events("file_received")
            await handle.write(data[half:], half)

    run_sftp(sandbox, keys.ed25519, action)
    done = sandbox.wait_for("file_done", name=NAME)[0]
    assert done["records"] == 1000


def test_csv_written_in_place_is_taken_only_after_close(sandbox, keys: Keys) -> None:
    data = records(mobiles(10))

    async def action(sftp: asyncssh.SFTPClient) -> None:
        async with sftp.open(f"Send/{NAME}", "wb") as handle:
            await handle.write(data[:7], 0)
            await asyncio.to_thread(sandbox.settle)
            assert listing(sandbox) == [NAME]
            await handle.write(data[7:], 7)

    run_sftp(sandbox, keys.ed25519, action)
    assert sandbox.wait_for("file_done", name=NAME)[0]["records"] == 10


def test_disconnect_mid_upload_leaves_a_tmp_never_processed(sandbox, keys: Keys) -> None:
    async def action() -> None:
        conn = await asyncssh.connect(**connect_kwargs(sandbox, keys.ed25519))
        sftp = await conn.start_sftp_client()
        handle = await sftp.open(f"Send/{TMP}", "wb")
        await handle.write(records(mobiles(100))[:500], 0)
        conn.abort()  # the network drops: no close, no rename

    asyncio.run(action())
    sandbox.wait_for("connection_closed")
    sandbox.advance(timedelta(days=2))
    sandbox.settle()
    assert listing(sandbox) == [TMP]
    assert not sandbox.events("file_received")


def test_path_escapes_stay_inside_the_root(sandbox, keys: Keys) -> None:
    root = sandbox.layout.root

    async def action(sftp: asyncssh.SFTPClient) -> tuple[str, str]:
        with pytest.raises(asyncssh.SFTPPermissionDenied):  # the root itself is not writable
            await sftp.open("../" * 12 + "escaped.txt", "wb")
        async with sftp.open("Send/../../Send/" + TMP, "wb") as handle:  # back into Send/
            await handle.write(records(mobiles(1)))
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.posix_rename(f"Send/{TMP}", "Send/../../../SEND-12345-20261201-0800-x.csv")
        return await sftp.realpath("../../.."), await sftp.realpath("Send/../..")

    assert run_sftp(sandbox, keys.ed25519, action) == ("/", "/")
    assert (root / "Send" / TMP).exists()
    for above in (root, root.parent, root.parent.parent, Path("/")):
        assert not (above / "escaped.txt").exists()
        assert not (above / "SEND-12345-20261201-0800-x.csv").exists()
    sandbox.settle()
    assert not sandbox.events("file_received")


@pytest.mark.parametrize(
    "path",
    [
        ".sandbox/events.jsonl",
        "/.sandbox/host_ed25519",
        "Send/../.sandbox/x",
        "../.sandbox/client_ed25519",
    ],
)
def test_private_directory_is_out_of_reach(sandbox, keys: Keys, path: str) -> None:
    async def action(sftp: asyncssh.SFTPClient) -> None:
        for attempt in (
            sftp.stat(path),
            sftp.open(path, "rb"),
            sftp.remove(path),
            sftp.listdir(path.rsplit("/", 1)[0] or "/.sandbox"),
        ):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await attempt

    run_sftp(sandbox, keys.ed25519, action)
    assert sandbox.layout.events.exists()


def test_links_cannot_be_created(sandbox, keys: Keys) -> None:
    async def action(sftp: asyncssh.SFTPClient) -> None:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.symlink("/", "Send/root")
        async with sftp.open("Send/a.tmp", "wb") as handle:
            await handle.write(b"a")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.link("Send/a.tmp", "Send/b.csv")

    run_sftp(sandbox, keys.ed25519, action)


def test_lock_files_belong_to_the_provider(sandbox, keys: Keys) -> None:
    lock = sandbox.layout.send / "SEND-12345-20261201-0800-busy.lock"
    lock.write_bytes(b"being processed")

    async def action(sftp: asyncssh.SFTPClient) -> bytes:
        for attempt in (
            sftp.remove("Send/SEND-12345-20261201-0800-busy.lock"),
            sftp.rename("Send/SEND-12345-20261201-0800-busy.lock", "Send/x.csv"),
            sftp.posix_rename("Send/x.tmp", "Send/SEND-12345-20261201-0800-busy.lock"),
            sftp.open("Send/SEND-12345-20261201-0800-busy.lock", "ab"),
        ):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await attempt
        async with sftp.open("Send/SEND-12345-20261201-0800-busy.lock", "rb") as handle:
            return await handle.read()

    assert run_sftp(sandbox, keys.ed25519, action) == b"being processed"


def test_no_shell_no_exec_no_forwarding(sandbox, keys: Keys) -> None:
    async def action() -> None:
        async with asyncssh.connect(**connect_kwargs(sandbox, keys.ed25519)) as conn:
            with pytest.raises(asyncssh.Error):
                await conn.run("cat /etc/passwd", check=True)
            with pytest.raises(asyncssh.Error):
                await conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", 22)
                await conn.open_connection("127.0.0.1", 22)

    asyncio.run(action())


def test_wrong_key_is_refused_and_logged_with_its_fingerprint(sandbox, keys: Keys) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        run_sftp(sandbox, keys.stranger, lambda sftp: sftp.listdir("/"))
    failed = sandbox.wait_for("auth_failed")[0]
    stranger = asyncssh.read_private_key(str(keys.stranger))
    assert failed["method"] == "publickey" and failed["key"] == stranger.get_fingerprint()
    assert not sandbox.events("auth_accepted")


def test_wrong_user_is_refused(sandbox, keys: Keys) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        run_sftp(sandbox, keys.ed25519, lambda sftp: sftp.listdir("/"), username="root")
    assert sandbox.wait_for("auth_failed")[0]["user"] == "root"


def test_wrong_password_is_refused_logged_and_never_written(
    make_sandbox: MakeSandbox, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = make_sandbox(password_file=keys.password_file)
    transport = paramiko.Transport(("127.0.0.1", sandbox.port))
    try:
        with pytest.raises(paramiko.AuthenticationException):
            transport.connect(username="sandbox", password="hunter2-wrong")
    finally:
        transport.close()
    failed = sandbox.wait_for("auth_failed")[0]
    assert failed["method"] == "password"
    run_sftp(
        sandbox, None, lambda sftp: sftp.listdir("/"), password=keys.password, client_keys=None
    )
    log_text = sandbox.layout.events.read_text() + caplog.text
    assert "hunter2" not in log_text and keys.password not in log_text


def test_password_is_off_unless_configured(sandbox, keys: Keys) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        run_sftp(
            sandbox, None, lambda sftp: sftp.listdir("/"), password=keys.password, client_keys=None
        )


def test_unlisted_ip_is_refused_before_any_ssh(make_sandbox: MakeSandbox, keys: Keys) -> None:
    import socket

    sandbox = make_sandbox(allow_ips=("127.0.0.1",))
    with socket.create_connection(
        ("127.0.0.1", sandbox.port), source_address=("127.0.0.2", 0), timeout=5
    ) as sock:
        sock.settimeout(5)
        assert sock.recv(100) == b""  # closed without even a banner
    assert sandbox.wait_for("connection_refused")[0]["peer"] == "127.0.0.2"


def test_two_clients_uploading_the_same_name_give_one_campaign(sandbox, keys: Keys) -> None:
    data = records(mobiles(50))

    async def both() -> None:
        kwargs = connect_kwargs(sandbox, keys.ed25519)
        async with asyncssh.connect(**kwargs) as a, asyncssh.connect(**kwargs) as b:
            sftp_a, sftp_b = await a.start_sftp_client(), await b.start_sftp_client()
            handle_a = await sftp_a.open(f"Send/{TMP}", "wb")
            handle_b = await sftp_b.open(f"Send/{TMP}", "wb")  # the same file
            await handle_a.write(data, 0)
            await handle_a.close()
            await sftp_a.posix_rename(f"Send/{TMP}", f"Send/{NAME}")  # B still writing
            await asyncio.to_thread(sandbox.wait_for, "file_waiting", name=NAME)
            await handle_b.write(data, 0)
            await handle_b.close()
            await asyncio.to_thread(sandbox.wait_for, "file_done", name=NAME)
            async with sftp_b.open(f"Send/{TMP}", "wb") as again:  # B retries the whole upload
                await again.write(data)
            await sftp_b.posix_rename(f"Send/{TMP}", f"Send/{NAME}")

    asyncio.run(both())
    sandbox.wait_for("file_ignored", name=NAME)
    sandbox.wait_for("batch_done", file=NAME)
    sandbox.settle()
    assert len(sandbox.events("file_locked")) == 1
    assert len(sandbox.events("message_sent", file=NAME)) == 50


# --- attributes, provider's files, quota, logins, log lines (issue 9) --------------------

DONE = "SEND-12345-20261201-0800-evil.done"


def test_setstat_changes_times_only(sandbox, keys: Keys, tmp_path: Path) -> None:
    """chmod (setuid or not), chown and truncation are refused over every path a client
    has (setstat by path, fsetstat on a handle, paramiko's helpers); times may be set."""
    data = records(mobiles(3))

    async def action(sftp: asyncssh.SFTPClient) -> None:
        async with sftp.open(f"Send/{TMP}", "wb") as handle:
            await handle.write(data)
            for attrs in (
                asyncssh.SFTPAttrs(permissions=0o4755),
                asyncssh.SFTPAttrs(size=0),
                asyncssh.SFTPAttrs(uid=0, gid=0),
            ):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await handle.setstat(attrs)
        for attempt in (
            sftp.chmod(f"Send/{TMP}", 0o6777),
            sftp.chown(f"Send/{TMP}", 0, 0),
            sftp.truncate(f"Send/{TMP}", 1),
        ):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await attempt
        await sftp.utime(f"Send/{TMP}", (1_700_000_000, 1_700_000_000))

    run_sftp(sandbox, keys.ed25519, action)
    transport = paramiko.Transport(("127.0.0.1", sandbox.port))
    try:
        transport.connect(username="sandbox", pkey=paramiko.Ed25519Key.from_private_key_file(
            str(keys.ed25519)))  # fmt: skip
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        for attempt in (
            lambda: client.chmod(f"Send/{TMP}", 0o4777),
            lambda: client.truncate(f"Send/{TMP}", 0),
            lambda: client.chown(f"Send/{TMP}", 0, 0),
        ):
            with pytest.raises(PermissionError):
                attempt()
    finally:
        transport.close()
    local = sandbox.layout.send / TMP
    assert local.read_bytes() == data
    assert local.stat().st_mode & 0o7777 == 0o644
    assert int(local.stat().st_mtime) == 1_700_000_000


def test_openssh_chmod_is_refused_and_put_creates_0644(sandbox, keys: Keys, tmp_path) -> None:
    from tests.sandbox.conftest import SFTP, openssh

    if SFTP is None:
        pytest.skip("OpenSSH sftp not installed")
    upload = tmp_path / TMP
    upload.write_bytes(records(mobiles(2)))
    upload.chmod(0o4755)  # put -p would carry the setuid bit over
    result = openssh(
        sandbox, keys.ed25519, f"cd Send\nput {TMP}\n-chmod 4755 {TMP}\n-chown 0 {TMP}\n", tmp_path
    )
    assert "Permission denied" in result.stderr
    assert (sandbox.layout.send / TMP).stat().st_mode & 0o7777 == 0o644
    result = openssh(sandbox, keys.ed25519, f"cd Send\nput -p {TMP}\n", tmp_path, check=False)
    assert (sandbox.layout.send / TMP).stat().st_mode & 0o7777 == 0o644


def test_provider_files_cannot_be_created_truncated_or_overwritten(sandbox, keys: Keys) -> None:
    from tests.sandbox.conftest import upload

    upload(sandbox, keys.ed25519, NAME, records(mobiles(2)))
    sandbox.wait_for("file_done", name=NAME)
    sandbox.advance(timedelta(days=1, minutes=1))
    ack = sandbox.wait_for("report_written", file=NAME)[0]["name"]
    before = {p: p.read_bytes() for p in (sandbox.layout.send / DONE, sandbox.layout.report / ack)}

    async def action(sftp: asyncssh.SFTPClient) -> None:
        async with sftp.open(f"Send/{TMP}", "wb") as handle:
            await handle.write(b"forged")
        for path in (f"Send/{DONE}", f"Report/{ack}", "Send/SEND-12345-20261201-0800-new.reject",
                     "Send/SEND-12345-20261201-0800-new.lock", "Report/ACK-x.csv"):  # fmt: skip
            for mode in ("wb", "ab", "r+b", "xb"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await sftp.open(path, mode)
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.posix_rename(f"Send/{TMP}", path)
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.rename(f"Send/{DONE}", f"Send/{TMP}x")
        async with sftp.open(f"Report/{ack}", "rb") as handle:  # reading is fine
            assert await handle.read() == before[sandbox.layout.report / ack]

    run_sftp(sandbox, keys.ed25519, action)
    for path, data in before.items():
        assert path.read_bytes() == data
    assert "ACK-x.csv" not in listing(sandbox, "Report")


def test_disk_quota_refuses_the_write_that_would_pass_it(make_sandbox, keys: Keys) -> None:
    sandbox = make_sandbox(quota=100_000)
    (sandbox.layout.send / "old.done").write_bytes(b"x" * 40_000)  # what is stored counts

    async def action(sftp: asyncssh.SFTPClient) -> None:
        async with sftp.open(f"Send/{TMP}", "wb") as handle:
            await handle.write(b"a" * 50_000, 0)
            with pytest.raises(asyncssh.SFTPFailure, match="quota"):
                await handle.write(b"b" * 20_000, 50_000)
            with pytest.raises(asyncssh.SFTPFailure, match="quota"):  # sparse, far away
                await handle.write(b"c", 10**12)
            await handle.write(b"d" * 10_000, 0)  # overwriting does not grow the file
        await sftp.remove("Send/old.done")  # room again, seen at the next open
        async with sftp.open(f"Send/{TMP}", "ab") as handle:
            await handle.write(b"e" * 45_000)

    run_sftp(sandbox, keys.ed25519, action)
    data = (sandbox.layout.send / TMP).read_bytes()
    assert data == b"d" * 10_000 + b"a" * 40_000 + b"e" * 45_000


def test_failed_logins_cut_the_connection_after_the_cap(make_sandbox, keys: Keys, tmp_path) -> None:
    from tests.sandboxes import write_key

    sandbox = make_sandbox(max_auth_failures=3, auth_failure_delay=0.01)
    wrong = [str(write_key(tmp_path, f"w{i}")) for i in range(5)]
    with pytest.raises((asyncssh.PermissionDenied, asyncssh.DisconnectError)):
        run_sftp(sandbox, None, lambda sftp: sftp.listdir("/"),
                 client_keys=[*wrong, str(keys.ed25519)])  # fmt: skip
    sandbox.wait_for("auth_limit")
    failed = sandbox.events("auth_failed")
    assert [e["failures"] for e in failed] == [1, 2, 3]  # the 4th key was never looked at
    assert not sandbox.events("auth_accepted")


def test_openssh_sftp_is_cut_after_the_cap_too(make_sandbox, keys: Keys, tmp_path) -> None:
    from tests.sandbox.conftest import SFTP, openssh
    from tests.sandboxes import write_key

    if SFTP is None:
        pytest.skip("OpenSSH sftp not installed")
    sandbox = make_sandbox(max_auth_failures=2, auth_failure_delay=0.01)
    extra = [a for i in range(4) for a in ("-i", str(write_key(tmp_path, f"o{i}")))]
    result = openssh(sandbox, keys.stranger, "ls\n", tmp_path, *extra, check=False)
    assert result.returncode != 0
    sandbox.wait_for("auth_limit")
    assert len(sandbox.events("auth_failed")) == 2


def test_failures_slow_down_their_address_not_others(make_sandbox, keys: Keys) -> None:
    import time

    sandbox = make_sandbox(allow_ips=("127.0.0.0/8",), auth_failure_delay=0.4)

    def login(key, source: str) -> float:
        started = time.monotonic()
        try:
            run_sftp(sandbox, key, lambda sftp: sftp.listdir("/"), local_addr=(source, 0))
        except asyncssh.PermissionDenied:
            pass
        return time.monotonic() - started

    fresh = login(keys.ed25519, "127.0.0.3")
    login(keys.stranger, "127.0.0.2")  # 1st failure: answered at once, 0.4 s penalty
    login(keys.stranger, "127.0.0.2")  # waits 0.4 s, 2nd failure: 0.8 s penalty
    slowed = login(keys.ed25519, "127.0.0.2")  # the right key still waits its turn
    other = login(keys.ed25519, "127.0.0.3")
    assert slowed >= 0.8 > other
    assert other < fresh + 0.3
    accepted = [e["peer"] for e in sandbox.events("auth_accepted")]
    assert accepted == ["127.0.0.3", "127.0.0.2", "127.0.0.3"]
    assert login(keys.ed25519, "127.0.0.2") < 0.8  # forgiven after the success


def test_file_names_cannot_forge_log_lines(sandbox, keys: Keys, caplog) -> None:
    import logging

    forged = "SEND-12345-20261201-0800-x\n2026-12-01 INFO SEND-1-20261201-0800-y.done: 9\n.csv"
    caplog.set_level(logging.INFO, logger="smsdrop.sandbox")

    async def action(sftp: asyncssh.SFTPClient) -> None:
        async with sftp.open(f"Send/{forged}", "wb") as handle:
            await handle.write(records(mobiles(1)))

    run_sftp(sandbox, keys.ed25519, action)
    sandbox.wait_for("file_rejected")
    messages = [record.getMessage() for record in caplog.records]
    assert any("\\n2026-12-01 INFO" in m for m in messages)  # quoted, visible
    assert not any("\n" in m for m in messages)


def test_a_client_asking_for_sftp_version_6_gets_3_and_the_same_rules(sandbox, keys) -> None:
    """The server speaks SFTP v3 only: v4+ opens (``open56``, guarded too) and attributes
    (owner names, ACLs) never reach it, whatever the client asks."""
    from tests.sandbox.conftest import upload

    upload(sandbox, keys.ed25519, NAME, records(mobiles(2)))
    sandbox.wait_for("file_done", name=NAME)

    async def action() -> None:
        kwargs = connect_kwargs(sandbox, keys.ed25519)
        async with (
            asyncssh.connect(**kwargs) as conn,
            conn.start_sftp_client(sftp_version=6) as sftp,
        ):
            assert sftp.version == 3
            for path in (f"Send/{DONE}", "Report/ACK-x.csv", "escaped.txt"):
                for mode in ("wb", "ab", "r+b"):
                    with pytest.raises(asyncssh.SFTPPermissionDenied):
                        await sftp.open(path, mode)
            async with sftp.open(f"Send/{TMP}", "wb") as handle:
                await handle.write(b"v6")
            for attrs in (
                asyncssh.SFTPAttrs(permissions=0o4755),
                asyncssh.SFTPAttrs(uid=0, gid=0),
                asyncssh.SFTPAttrs(size=0),
            ):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await sftp.setstat(f"Send/{TMP}", attrs)

    asyncio.run(action())
    assert (sandbox.layout.send / TMP).read_bytes() == b"v6"
    assert (sandbox.layout.send / TMP).stat().st_mode & 0o7777 == 0o644


@pytest.mark.parametrize("name", ["..csv", "...csv", "x\n.csv", ".sandbox.csv"])
def test_hostile_names_cannot_reach_the_sandboxs_state(sandbox, keys: Keys, name: str) -> None:
    """A stem is a folder of .sandbox/state/: ``..`` or ``.`` must not name another one."""
    from tests.sandbox.conftest import upload

    upload(sandbox, keys.ed25519, "SEND-12345-20261201-0800-first.csv", records(mobiles(2)))
    sandbox.wait_for("campaign_scheduled")
    sandbox.settle()
    state = sandbox.layout.state
    kept = state / "campaigns" / "SEND-12345-20261201-0800-first"

    async def action(sftp: asyncssh.SFTPClient) -> None:
        async with sftp.open(f"Send/{name}", "wb") as handle:
            await handle.write(records(mobiles(1)))

    run_sftp(sandbox, keys.ed25519, action)
    sandbox.wait_for("file_rejected", name=name)
    sandbox.settle()
    assert not sandbox.events("internal_error")
    assert (state / "state.json").exists() and (kept / "static.npz").exists()
    assert (kept / "SEND-12345-20261201-0800-first.csv").exists()
    assert not [p for p in state.rglob("*.csv") if p.name == name]  # dropped with its verdict


def test_quota_stops_openssh_and_paramiko_uploads(make_sandbox, keys: Keys, tmp_path) -> None:
    from tests.sandbox.conftest import SFTP, openssh

    sandbox = make_sandbox(quota=50_000)
    big = tmp_path / "big.tmp"
    big.write_bytes(records(mobiles(1000)))  # ~70 kB
    transport = paramiko.Transport(("127.0.0.1", sandbox.port))
    try:
        key = paramiko.Ed25519Key.from_private_key_file(str(keys.ed25519))
        transport.connect(username="sandbox", pkey=key)
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        # paramiko pipelines its writes: it reports the refused one as a short file.
        with pytest.raises(OSError, match="quota|size mismatch"):
            client.put(str(big), "Send/p.tmp")
    finally:
        transport.close()
    assert (sandbox.layout.send / "p.tmp").stat().st_size <= 50_000
    if SFTP is not None:
        result = openssh(sandbox, keys.ed25519, "put big.tmp Send/o.tmp\n", tmp_path, check=False)
        # OpenSSH shows the status code's name (v3 has no quota code), not the message.
        assert result.returncode != 0 and 'write remote "/Send/o.tmp"' in result.stderr
        used = sum(p.stat().st_size for p in sandbox.layout.send.iterdir())
        assert used <= 50_000


def test_a_scratch_folder_is_writable_only_when_configured_and_never_processed(
    make_sandbox, keys: Keys
) -> None:
    """``--scratch`` (benchmarks of the transfer alone): writable, a ``.csv`` there is not
    taken; without it, the same folder is refused like anything outside ``Send/``."""
    name = "SEND-12345-20261201-0800-scratch.csv"

    async def upload(sftp: asyncssh.SFTPClient) -> None:
        async with sftp.open(f"bench/{name}.tmp", "wb") as handle:
            await handle.write(b"c1;+33612345678;SHOP;hi\r\n")
        await sftp.posix_rename(f"bench/{name}.tmp", f"bench/{name}")
        await sftp.remove(f"bench/{name}")

    sandbox = make_sandbox(scratch="bench")
    (sandbox.layout.root / "bench").mkdir()
    run_sftp(sandbox, keys.ed25519, upload)
    sandbox.settle()
    assert not sandbox.events("file_received")

    closed = make_sandbox()
    (closed.layout.root / "bench").mkdir()

    async def refused(sftp: asyncssh.SFTPClient) -> None:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open(f"bench/{name}.tmp", "wb")

    run_sftp(closed, keys.ed25519, refused)
    with pytest.raises(ValueError, match="plain folder name"):
        make_sandbox(scratch="../Send")
