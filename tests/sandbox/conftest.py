"""Fixtures for the sandbox tests: keys made once, a sandbox per test, clients.

Time never passes by sleeping: the sandbox's clock starts at a fixed instant (Tuesday
1 December 2026, 09:00 Paris) and tests jump it (``sandbox.advance``); waiting is always
for an event in the log (``sandbox.wait_for``), never for a duration.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncssh
import pytest

from smsdrop.sandbox import Sandbox
from smsdrop.sandbox.reference import sftp_command
from tests.sandboxes import MakeSandbox, SandboxFactory, write_key

PARIS = ZoneInfo("Europe/Paris")
#: A Tuesday, an ordinary working day in France.
START = datetime(2026, 12, 1, 9, 0, tzinfo=PARIS)
SFTP = shutil.which("sftp")


@dataclass(frozen=True)
class Keys:
    ed25519: Path
    rsa: Path
    stranger: Path
    authorized: Path
    password_file: Path
    password: str
    host: Path


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Client keys (authorized ed25519 and RSA, an unauthorized one), a password, a host key."""
    folder = tmp_path_factory.mktemp("keys")
    algorithms = {"ed25519": "ssh-ed25519", "rsa": "ssh-rsa", "stranger": "ssh-ed25519",
                  "host": "ssh-ed25519"}  # fmt: skip
    paths = {name: write_key(folder, name, alg) for name, alg in algorithms.items()}
    authorized = folder / "authorized_keys"
    authorized.write_text(
        (folder / "id_ed25519.pub").read_text() + (folder / "id_rsa.pub").read_text()
    )
    password = "correct horse battery staple"
    password_file = folder / "password"
    password_file.write_text(password + "\n")
    return Keys(
        paths["ed25519"],
        paths["rsa"],
        paths["stranger"],
        authorized,
        password_file,
        password,
        paths["host"],
    )


@pytest.fixture
def make_sandbox(tmp_path: Path, keys: Keys) -> Iterator[MakeSandbox]:
    """Start a sandbox with test settings; ``**changes`` override them."""
    factory = SandboxFactory(
        tmp_path,
        host_key=keys.host,
        authorized_keys=keys.authorized,
        start=START,
        auth_failure_delay=0.05,  # the throttle itself is tested with its own settings
    )
    yield factory
    factory.stop()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return make_sandbox()


# --- building SEND files ---------------------------------------------------------------


def records(rows: Sequence[Sequence[str]], end: str = "\r\n") -> bytes:
    """SEND bytes from rows of 4 fields (no quoting: write it in the field if wanted)."""
    return "".join(";".join(row) + end for row in rows).encode("utf-8")


def mobiles(
    n: int, start: int = 0, text: str = "Promo -20% ce samedi. STOP au 36111", prefix: str = "+336"
) -> list[tuple[str, str, str, str]]:
    """``n`` distinct valid French mobile rows."""
    return [
        (f"C{start + i:07d}", f"{prefix}{12000000 + start + i:08d}", "SHOP", text) for i in range(n)
    ]


# --- clients -------------------------------------------------------------------------


def connect_kwargs(sandbox: Sandbox, key: Path | None) -> dict[str, object]:
    return {
        "host": "127.0.0.1",
        "port": sandbox.port,
        "username": sandbox.config.user,
        "client_keys": [str(key)] if key else None,
        "known_hosts": None,
        "agent_path": None,
    }


def run_sftp(sandbox: Sandbox, key: Path | None, action, **extra: object):
    """Run ``await action(sftp)`` in a fresh asyncssh SFTP session."""

    async def go():
        kwargs = {**connect_kwargs(sandbox, key), **extra}
        async with asyncssh.connect(**kwargs) as conn, conn.start_sftp_client() as sftp:
            return await action(sftp)

    return asyncio.run(go())


def upload(
    sandbox: Sandbox,
    key: Path,
    name: str,
    data: bytes,
    *,
    folder: str = "Send",
    rename: bool = True,
) -> None:
    """Upload as our client does: ``name.tmp``, then a POSIX rename to ``name.csv``."""
    stem = name.rsplit(".", 1)[0]

    async def action(sftp: asyncssh.SFTPClient) -> None:
        async with sftp.open(f"{folder}/{stem}.tmp", "wb") as handle:
            await handle.write(data)
        if rename:
            await sftp.posix_rename(f"{folder}/{stem}.tmp", f"{folder}/{name}")

    run_sftp(sandbox, key, action)


def listing(sandbox: Sandbox, folder: str = "Send") -> list[str]:
    return sorted(p.name for p in (sandbox.layout.root / folder).iterdir())


def openssh(
    sandbox: Sandbox, key: Path, batch: str, tmp_path: Path, *extra: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run OpenSSH's ``sftp -b`` against the sandbox, host key pinned, one identity."""
    tmp = tmp_path
    known = tmp / "known_hosts"
    known.write_text(sandbox.known_hosts_line() + "\n")
    script = tmp / "batch"
    script.write_text(batch)
    return subprocess.run(
        sftp_command(
            sandbox.port, sandbox.config.user, key, known, *extra, batch=script, program=SFTP
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
        cwd=tmp,
    )
