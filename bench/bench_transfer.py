"""Upload speed of MTargetHook vs the SFTP provider's ``SFTPHook.store_file`` vs OpenSSH ``sftp``.

The same 1,000,000-record SEND file, the same server, alternately, several rounds, median:

* **ours**: ``MTargetHook.upload_atomic`` (AES-GCM, 261120-byte pipelined WRITE requests
  built in place, in two SFTP sessions writing a half each against sshd, then size check,
  checksum attempt and POSIX rename), inside an open session; the file the server
  received is checked byte for byte (SHA-256) each round, outside the timing;
  **ours (one stream)** is the same with the ``upload_streams`` extra at 1;
* **store_file**: the provider's ``SFTPHook.store_file`` (paramiko ``put``, 32 KiB requests),
  inside an open session, same connection (compression off, as ours: the provider's
  default ``compress=True`` is measured once more as ``store_file (compress on)``);
* **sftp**: OpenSSH's client, ``sftp -b`` with one ``put``, minus the time of an empty
  session (connect and login), as ``bench/bench_sftp.py`` measures it.

Besides each client's median, ``ours / sftp, paired`` is the median of the per-round
ratios (ours and ``sftp`` measured next to each other): on a shared machine the load moves
between rounds, and the pair sees the same load.

Servers: the sandbox in its own process (``smsdrop sandbox serve``: its own GIL, as the
provider is another machine) and a private OpenSSH ``sshd`` on loopback when installed
(``.ci/ensure-sshd``). Figures go to docs/PERFORMANCE.md.

    AIRFLOW_HOME=$PWD .venv/bin/python -m bench.bench_transfer [--records 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

os.environ.setdefault("AIRFLOW_HOME", str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

from bench import common
from smsdrop.sandbox.reference import PrivateSshd, find_sshd, free_port, sftp_command

WORK = Path("var/bench/transfer").resolve()
NAME = "SEND-12345-20261201-0800-bench.csv"
START = "2026-12-01T09:00+01:00"
CONN = "mtarget_bench"


def send_file(records: int) -> Path:
    return common.send_file(WORK / f"{records}" / NAME, records)


def client_key() -> Path:
    return common.client_key(WORK)


class Clock:
    """Wall and CPU seconds of a block: this process's CPU, or its children's (``sftp``)."""

    def __init__(self, children: bool = False) -> None:
        self.who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF

    def _cpu(self) -> float:
        usage = resource.getrusage(self.who)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> Self:
        self.wall, self.cpu = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, self._cpu() - self.cpu

    def result(self) -> tuple[float, float]:
        return self.wall, self.cpu


@dataclass
class Server:
    """Where uploads go: port, login, pinned host key, a scratch folder seen both ways."""

    label: str
    port: int
    user: str
    host_key: str  # "ssh-ed25519 AAAA…"
    remote_dir: str  # as the SFTP session sees it
    local_dir: Path  # the same folder on this machine
    seconds: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def connection(self, key: Path, compress: bool = False, **more: object) -> None:
        extra = {
            "key_file": str(key),
            "host_key": self.host_key,
            "send_dir": self.remote_dir,
            "compress": str(compress).lower(),
            "connect_attempts": 1,
            **more,
        }
        document = {
            "conn_type": "sftp",
            "host": "127.0.0.1",
            "port": self.port,
            "login": self.user,
            "extra": extra,
        }
        os.environ[f"AIRFLOW_CONN_{CONN.upper()}"] = json.dumps(document)

    def check_received(self, name: str, digest: str) -> None:
        """The server holds ``name`` alone, with the local file's SHA-256."""
        found = [path.name for path in self.local_dir.iterdir()]
        assert found == [name], f"{self.label}: {found}"
        with open(self.local_dir / name, "rb") as received:
            assert hashlib.file_digest(received, "sha256").hexdigest() == digest, self.label

    def clean(self) -> None:
        for path in self.local_dir.iterdir():
            path.unlink()


def ours(server: Server, file: Path, key: Path, streams: int = 2) -> tuple[float, float]:
    from smsdrop.airflow.hooks import MTargetHook

    server.connection(key, upload_streams=streams)
    hook = MTargetHook(CONN)
    with hook.get_managed_conn():
        hook.remote_state(file.name)  # session open and warm, as in the operator
        with Clock() as clock:
            hook.upload_atomic(file, file.name)
        return clock.result()


def store_file(
    server: Server, file: Path, key: Path, compress: bool = False
) -> tuple[float, float]:
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    server.connection(key, compress=compress)
    hook = SFTPHook(ssh_conn_id=CONN)
    hook.look_for_keys = False
    with hook.get_managed_conn():
        hook.isdir(server.remote_dir)
        with Clock() as clock:
            hook.store_file(f"{server.remote_dir}/{file.stem}.tmp", str(file), confirm=True)
        return clock.result()


def openssh(server: Server, file: Path, key: Path, work: Path) -> tuple[float, float]:
    known = work / f"known_hosts_{server.label}"
    where = f"[127.0.0.1]:{server.port}"
    known.write_text(f"{where} {server.host_key}\n")

    def session(batch: str) -> tuple[float, float]:
        command = sftp_command(server.port, server.user, key, known, "-q")
        with Clock(children=True) as clock:
            subprocess.run(command, input=batch.encode(), check=True, stdout=subprocess.DEVNULL)
        return clock.result()

    empty = session("pwd\n")
    full = session(f"put {file} {server.remote_dir}/{file.stem}.tmp\n")
    return full[0] - empty[0], full[1] - empty[1]


def start_sandbox(work: Path, key: Path) -> tuple[subprocess.Popen[str], Server]:
    authorized = work / "authorized_keys"
    authorized.write_text(Path(str(key) + ".pub").read_text())
    root = work / "sandbox"
    port = free_port()
    process = subprocess.Popen(
        common.sandbox_serve_command(root, port, authorized, START),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    host_key = ""
    assert process.stdout is not None
    for _ in range(10):
        line = process.stdout.readline()
        if line.startswith("host key:"):
            host_key = " ".join(line.split()[2:4])
        if not line or line.startswith("event log:"):
            break
    scratch = root / "bench"  # the sandbox's --scratch: writable, never processed
    scratch.mkdir(parents=True, exist_ok=True)
    return process, Server("sandbox", port, "sandbox", host_key, "bench", scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    file = send_file(args.records)
    with open(file, "rb") as source:
        digest = hashlib.file_digest(source, "sha256").hexdigest()
    mb = file.stat().st_size / 1e6
    key = client_key()
    work = Path(tempfile.mkdtemp(prefix="bench-transfer-", dir=WORK))
    sandbox, sandbox_server = start_sandbox(work, key)
    servers = [sandbox_server]
    sshd = None
    if find_sshd():
        sshd = PrivateSshd(work / "sshd", work / "authorized_keys").start()
        drop = work / "sshd-drop"
        drop.mkdir()
        host_key = " ".join(sshd.known_hosts_line().split()[1:3])
        servers.append(Server("sshd", sshd.port, sshd.user, host_key, str(drop), drop))
    else:
        print("sshd not installed: the sandbox only (.ci/ensure-sshd)", file=sys.stderr)

    clients: dict[str, Callable[[Server], tuple[float, float]]] = {
        # ours next to sftp in both orders: the paired ratio compares neighbours
        "store_file": lambda s: store_file(s, file, key),
        "ours (one stream)": lambda s: ours(s, file, key, streams=1),
        "ours": lambda s: ours(s, file, key),
        "sftp": lambda s: openssh(s, file, key, work),
    }
    try:
        for server in servers:
            for round_ in range(args.rounds):
                order = list(clients.items())
                order = order if round_ % 2 == 0 else order[::-1]
                for label, run in order:
                    wall, cpu = run(server)
                    server.seconds.setdefault(label, []).append(wall)
                    server.cpu.setdefault(label, []).append(cpu)
                    if label.startswith("ours"):
                        server.check_received(file.name, digest)
                    server.clean()
            wall, cpu = store_file(server, file, key, compress=True)
            server.clean()
            server.seconds["store_file (compress on)"] = [wall]
            server.cpu["store_file (compress on)"] = [cpu]
    finally:
        if sshd is not None:
            sshd.stop()
        sandbox.terminate()
        sandbox.wait(60)

    results: dict[str, object] = {
        "file": file.name,
        "records": args.records,
        "mb": round(mb, 1),
        "load_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    rows = []
    for server in servers:
        paired = statistics.median(
            theirs / ours
            for ours, theirs in zip(server.seconds["ours"], server.seconds["sftp"], strict=True)
        )
        results[f"{server.label}.ours_vs_sftp_paired"] = round(paired, 3)
        rows.append(f"| {server.label} | ours / sftp, paired | | | {paired:.2f}x | |")
        reference = statistics.median(server.seconds["sftp"])
        for label, values in server.seconds.items():
            median = statistics.median(values)
            cpu = statistics.median(server.cpu[label])
            rows.append(
                f"| {server.label} | {label} | {median:.2f} s | {mb / median:.0f} MB/s | "
                f"{reference / median:.2f}x | {cpu:.2f} s |"
            )
            results[f"{server.label}.{label}"] = {
                "s": [round(v, 3) for v in values],
                "cpu_s": [round(v, 3) for v in server.cpu[label]],
                "mb_s": round(mb / median, 1),
                "vs_sftp": round(reference / median, 3),
            }
    print(json.dumps(results, indent=2))
    print("\n| server | client | median | throughput | vs OpenSSH sftp | client CPU |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
