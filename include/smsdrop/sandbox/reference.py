"""A private OpenSSH ``sshd`` on loopback: the yardstick the sandbox's SFTP speed is held to.

The throughput benchmark (bench/bench_sftp.py) and a smoke test upload the same file to
this and to the sandbox with OpenSSH's ``sftp``. It runs in the foreground (``sshd -D``)
on a free high port with its own config, host key and authorized_keys under a work
directory: no system service, nothing outside that directory touched except the
privilege-separation directory sshd insists on (``/run/sshd``, created when missing and
running as root, as the Debian package's service would). ``.ci/ensure-sshd`` installs sshd.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["PrivateSshd", "find_sshd", "free_port", "sftp_command"]

PRIVSEP_DIR = Path("/run/sshd")


def sftp_command(
    port: int,
    user: str,
    key: Path | str,
    known_hosts: Path | str,
    *options: str,
    batch: Path | str = "-",
    program: str = "sftp",
) -> list[str]:
    """OpenSSH ``sftp`` in batch mode, logging in with ``key`` only and the host key pinned.

    ``batch`` is a file of commands, or ``-`` for standard input; ``options`` go before the
    destination (``-q``, ``-c CIPHER`` …).
    """
    return [
        program,
        "-b",
        str(batch),
        "-P",
        str(port),
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        *options,
        f"{user}@127.0.0.1",
    ]


def find_sshd() -> str | None:
    """The sshd binary, or None when it is not installed (callers skip)."""
    found = shutil.which("sshd")
    if found:
        return found
    return "/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateSshd:
    """``with PrivateSshd(workdir, authorized_keys) as sshd:`` — sshd on ``sshd.port``.

    SFTP is ``internal-sftp`` (what chrooted drop-boxes use); the login is the current user.
    ``options`` are more ``sshd_config`` lines (``Ciphers aes128-cbc`` to play an old
    server); ``log_level`` ``DEBUG2`` makes sshd log each client's algorithm proposal, which
    :meth:`client_proposals` reads back (tests of what a client offers). sshd's log is
    ``workdir/sshd.log``.
    """

    def __init__(
        self,
        workdir: Path,
        authorized_keys: Path,
        port: int | None = None,
        *,
        options: Sequence[str] = (),
        log_level: str = "ERROR",
    ) -> None:
        self.workdir = Path(workdir)
        self.authorized_keys = Path(authorized_keys).resolve()
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.options = tuple(options)
        self.log_level = log_level
        self.log_path = self.workdir / "sshd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> PrivateSshd:
        sshd = find_sshd()
        if sshd is None:
            raise FileNotFoundError("sshd is not installed (run .ci/ensure-sshd)")
        if os.geteuid() == 0 and not PRIVSEP_DIR.exists():
            PRIVSEP_DIR.mkdir(mode=0o755)
        self.workdir.mkdir(parents=True, exist_ok=True)
        host_key = self.workdir / "ssh_host_ed25519_key"
        if not host_key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
            )
        config = self.workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key.resolve()}",
                    f"PidFile {(self.workdir / 'sshd.pid').resolve()}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "StrictModes no",
                    "UsePAM no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "Subsystem sftp internal-sftp",
                    f"LogLevel {self.log_level}",
                    *self.options,
                    "",
                ]
            )
        )
        with open(self.log_path, "wb") as log_file:
            self._proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(config.resolve())],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                start_new_session=True,  # its own process group, stopped as one
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                error = self.log_path.read_text(errors="replace")
                raise RuntimeError(f"sshd exited at start: {error.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError("sshd did not start listening")

    def client_proposals(self) -> list[dict[str, list[str]]]:
        """Each client's KEXINIT proposal as sshd logged it (``log_level`` ``DEBUG2``), in
        order: ``{"ciphers": [...], "MACs": [...], "KEX algorithms": [...], ...}`` with
        the client-to-server lists."""
        proposals: list[dict[str, list[str]]] = []
        current: dict[str, list[str]] | None = None
        for line in self.log_path.read_text(errors="replace").splitlines():
            if "peer client KEXINIT proposal" in line:
                current = {}
                proposals.append(current)
            elif current is not None and ": " in line and "debug2: " in line:
                text = line.split("debug2: ", 1)[1].removesuffix(" [preauth]").strip()
                key, _, value = text.partition(": ")
                key = key.removesuffix(" ctos")
                if key.endswith(" stoc"):
                    continue
                if key in current:  # the proposal is over: the next block is another one
                    current = None
                    continue
                current[key] = value.split(",") if value else []
        return proposals

    def known_hosts_line(self) -> str:
        public = (self.workdir / "ssh_host_ed25519_key.pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {public[0]} {public[1]}"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGTERM)  # its per-connection children
        self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
