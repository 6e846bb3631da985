"""Real clients against the sandbox: OpenSSH's ``sftp`` (the reference), paramiko, asyncssh.

Each uploads ``name.tmp``, renames it ``name.csv`` and sees ``.done`` (or ``.reject`` for a
bad file), as our Airflow operator and a person doing it by hand would.
"""

from __future__ import annotations

import asyncio
import io
import stat
import subprocess
from datetime import timedelta

import asyncssh
import paramiko
import pytest

from smsdrop.reports import parse_ack
from tests.sandbox.conftest import (
    SFTP,
    Keys,
    MakeSandbox,
    connect_kwargs,
    listing,
    mobiles,
    openssh,
    records,
    run_sftp,
    upload,
)

NAME = "SEND-12345-20261201-0800-ref.csv"
needs_openssh = pytest.mark.skipif(SFTP is None, reason="OpenSSH sftp client not installed")


def verdict_of(sandbox, name: str, timeout: float = 30.0) -> str:
    return sandbox.wait_for_first(("file_done", "file_rejected"), timeout, name=name)["kind"]


@needs_openssh
@pytest.mark.parametrize("which", ["ed25519", "rsa"])
def test_openssh_sftp_uploads_renames_and_sees_done(sandbox, keys: Keys, tmp_path, which) -> None:
    key = getattr(keys, which)
    (tmp_path / "SEND-12345-20261201-0800-ref.tmp").write_bytes(records(mobiles(20)))
    openssh(
        sandbox,
        key,
        tmp_path=tmp_path,
        batch=(
            "cd Send\n"
            "put SEND-12345-20261201-0800-ref.tmp\n"
            "rename SEND-12345-20261201-0800-ref.tmp SEND-12345-20261201-0800-ref.csv\n"
        ),
    )
    assert verdict_of(sandbox, NAME) == "file_done"
    shown = openssh(sandbox, key, tmp_path=tmp_path, batch="ls -1 Send\n").stdout
    assert "SEND-12345-20261201-0800-ref.done" in shown
    sandbox.advance(timedelta(days=1, minutes=1))
    sandbox.wait_for("report_written", file=NAME)
    openssh(
        sandbox,
        key,
        tmp_path=tmp_path,
        batch="get Report/ACK-12345-20261201-0800-ref.csv\nrm Report/ACK-12345-20261201-0800-ref.csv\n",
    )
    ack = parse_ack((tmp_path / "ACK-12345-20261201-0800-ref.csv").read_bytes(), "ack")
    assert len(ack) == 20
    assert listing(sandbox, "Report") == []  # the client may delete what it fetched


@needs_openssh
def test_openssh_sftp_bad_file_ends_reject(sandbox, keys: Keys, tmp_path) -> None:
    (tmp_path / "bad.tmp").write_bytes(b"IDREMOTE;MSISDN;OADC;MSG\r\n")
    openssh(
        sandbox,
        keys.ed25519,
        tmp_path=tmp_path,
        batch=(
            "put bad.tmp Send/SEND-12345-20261201-0800-ref.tmp\n"
            "rename Send/SEND-12345-20261201-0800-ref.tmp Send/SEND-12345-20261201-0800-ref.csv\n"
        ),
    )
    assert verdict_of(sandbox, NAME) == "file_rejected"
    shown = openssh(sandbox, keys.ed25519, tmp_path=tmp_path, batch="ls -1 Send\n").stdout
    assert "SEND-12345-20261201-0800-ref.reject" in shown


@needs_openssh
def test_openssh_refuses_a_host_key_other_than_the_pinned_one(
    make_sandbox: MakeSandbox, keys: Keys, tmp_path
) -> None:
    """The host key persists under the root, so clients can pin it once."""
    first = make_sandbox(host_key=None)
    public = first.host_public_key
    first.stop()
    again = make_sandbox(root=first.config.root, host_key=None)
    assert again.host_public_key == public
    assert stat.S_IMODE(again.layout.host_key.stat().st_mode) == 0o600
    other = make_sandbox(host_key=None)  # another root: another key
    known = tmp_path / "known"
    known.mkdir()
    result = openssh(again, keys.ed25519, tmp_path=known, batch="ls\n")
    assert result.returncode == 0
    key_type, key_data = other.host_public_key.split()[:2]
    (known / "known_hosts").write_text(f"[127.0.0.1]:{again.port} {key_type} {key_data}\n")
    refused = subprocess.run(
        [
            SFTP,
            "-b",
            "-",
            "-P",
            str(again.port),
            "-i",
            str(keys.ed25519),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={known / 'known_hosts'}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "sandbox@127.0.0.1",
        ],
        input="ls\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode != 0 and "HOST IDENTIFICATION HAS CHANGED" in refused.stderr


def test_paramiko_uploads_with_key_and_with_password(make_sandbox: MakeSandbox, keys) -> None:
    sandbox = make_sandbox(password_file=keys.password_file)
    for index, auth in enumerate(
        [
            {"pkey": paramiko.Ed25519Key.from_private_key_file(str(keys.ed25519))},
            {"password": keys.password},
        ]
    ):
        name = f"SEND-12345-20261201-0800-pmk{index}.csv"
        transport = paramiko.Transport(("127.0.0.1", sandbox.port))
        try:
            transport.connect(username="sandbox", **auth)
            sftp = paramiko.SFTPClient.from_transport(transport)
            sftp.putfo(io.BytesIO(records(mobiles(5))), f"Send/{name[:-4]}.tmp", confirm=True)
            sftp.posix_rename(f"Send/{name[:-4]}.tmp", f"Send/{name}")
            assert verdict_of(sandbox, name) == "file_done"
            assert f"{name[:-4]}.done" in sftp.listdir("Send")
        finally:
            transport.close()
    methods = [e["method"] for e in sandbox.events("auth_accepted")]
    assert methods == ["publickey", "password"]


def test_asyncssh_client_gets_the_capped_write_length_and_uploads(sandbox, keys) -> None:
    data = records(mobiles(30_000))  # ~1.6 MB: several 261120-byte writes

    async def action(sftp: asyncssh.SFTPClient) -> int:
        async with sftp.open("Send/SEND-12345-20261201-0800-ref.tmp", "wb") as handle:
            await handle.write(data)
        await sftp.posix_rename("Send/SEND-12345-20261201-0800-ref.tmp", f"Send/{NAME}")
        return sftp.limits.max_write_len

    assert run_sftp(sandbox, keys.ed25519, action) == 261_120
    assert verdict_of(sandbox, NAME) == "file_done"
    assert sandbox.events("file_done", name=NAME)[0]["records"] == 30_000


def test_concurrent_sessions_upload_at_once(sandbox, keys: Keys) -> None:
    names = [f"SEND-12345-20261201-0800-par{i}.csv" for i in range(4)]
    chunks = [records(mobiles(2000, start=i * 2000)) for i in range(4)]

    async def one(name: str, data: bytes) -> None:
        kwargs = connect_kwargs(sandbox, keys.ed25519)
        async with asyncssh.connect(**kwargs) as conn, conn.start_sftp_client() as sftp:
            async with sftp.open(f"Send/{name[:-4]}.tmp", "wb") as handle:
                for start in range(0, len(data), 4096):  # interleave with the others
                    await handle.write(data[start : start + 4096], start)
                    await asyncio.sleep(0)
            await sftp.posix_rename(f"Send/{name[:-4]}.tmp", f"Send/{name}")

    async def all_of_them() -> None:
        await asyncio.gather(*(one(n, d) for n, d in zip(names, chunks, strict=True)))

    asyncio.run(all_of_them())
    for name in names:
        assert verdict_of(sandbox, name) == "file_done"
    assert len(sandbox.events("auth_accepted")) == 4
    assert sorted(e["records"] for e in sandbox.events("file_done")) == [2000] * 4


def test_plain_sftp_rename_onto_an_existing_name_fails_posix_rename_replaces(
    sandbox, keys: Keys
) -> None:
    """FIELD-NOTES: plain rename fails when the target exists; posix-rename overwrites."""

    async def action(sftp: asyncssh.SFTPClient) -> list[str]:
        for name in ("a.tmp", "b.tmp"):
            async with sftp.open(f"Send/{name}", "wb") as handle:
                await handle.write(name.encode())
        with pytest.raises(asyncssh.SFTPFailure):
            await sftp.rename("Send/a.tmp", "Send/b.tmp")
        await sftp.posix_rename("Send/a.tmp", "Send/b.tmp")
        return sorted(await sftp.listdir("Send"))

    assert run_sftp(sandbox, keys.ed25519, action) == [".", "..", "b.tmp"]
    assert (sandbox.layout.send / "b.tmp").read_bytes() == b"a.tmp"


def test_plain_sftp_rename_is_taken_like_posix_rename(sandbox, keys: Keys) -> None:
    upload(sandbox, keys.ed25519, NAME, records(mobiles(3)), rename=False)
    run_sftp(
        sandbox, keys.ed25519, lambda sftp: sftp.rename(f"Send/{NAME[:-4]}.tmp", f"Send/{NAME}")
    )
    assert verdict_of(sandbox, NAME) == "file_done"


def test_ciphers_offered_are_aes_gcm_unless_widened(make_sandbox: MakeSandbox, keys) -> None:
    chacha = {"encryption_algs": ["chacha20-poly1305@openssh.com"]}
    sandbox = make_sandbox()
    with pytest.raises(asyncssh.Error):
        run_sftp(sandbox, keys.ed25519, lambda sftp: sftp.listdir("/"), **chacha)
    wide = make_sandbox(ciphers=("chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"))
    assert "Send" in run_sftp(wide, keys.ed25519, lambda sftp: sftp.listdir("/"), **chacha)
