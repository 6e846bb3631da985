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
        async with sftp.open("../" * 12 + "escaped.txt", "wb") as handle:
            await handle.write(b"x")
        async with sftp.open(f"Send/{TMP}", "wb") as handle:
            await handle.write(records(mobiles(1)))
        await sftp.posix_rename(f"Send/{TMP}", "Send/../../../SEND-12345-20261201-0800-x.csv")
        return await sftp.realpath("../../.."), await sftp.realpath("Send/../..")

    assert run_sftp(sandbox, keys.ed25519, action) == ("/", "/")
    assert (root / "escaped.txt").read_bytes() == b"x"
    for above in (root.parent, root.parent.parent, Path("/")):
        assert not (above / "escaped.txt").exists()
        assert not (above / "SEND-12345-20261201-0800-x.csv").exists()
    sandbox.settle()
    assert (root / "SEND-12345-20261201-0800-x.csv").exists()  # in the root: ignored
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
