"""Benchmark of the provider sandbox: SFTP upload speed against OpenSSH sshd, and processing.

1. Throughput: OpenSSH's ``sftp`` uploads the same 1,000,000-record SEND file into the
   sandbox (``smsdrop sandbox serve``, its own process) and into a private OpenSSH
   ``sshd`` (``internal-sftp``) on loopback, alternately, several rounds; each session puts
   the file ``--puts`` times and the time of an empty session (connect, auth) is
   subtracted. Target: sandbox ≥ 0.8× sshd.
2. Processing: the uploaded ``.tmp`` is renamed ``.csv``; the event log gives the time from
   lock to ``.done`` (target < 10 s), then planning, sending the million messages (their
   event lines) and, after a clock jump of 4 days, writing the ACK.

Needs sshd (``.ci/ensure-sshd`` installs it); without it only the sandbox is measured.

    .venv/bin/python -m bench.bench_sftp [--records 1000000] [--rounds 3] [--puts 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench import common
from smsdrop.sandbox.events import events
from smsdrop.sandbox.reference import PrivateSshd, find_sshd, free_port, sftp_command

WORK = Path("var/bench/sftp").resolve()
NAME = "SEND-12345-20261201-0800-bench"  # 08:00 Paris: past at the sandbox's start, sent at once
START = "2026-12-01T09:00+01:00"


def send_file(records: int) -> Path:
    return common.send_file(WORK / f"{NAME}-{records}.csv", records)


def client_key() -> Path:
    return common.client_key(WORK)


def sftp(
    port: int, user: str, known_hosts: Path, key: Path, batch: str, cipher: str | None, cwd: Path
) -> float:
    """Run one ``sftp -b`` session; its wall time in seconds."""
    script = cwd / "batch"
    script.write_text(batch)
    options = ["-q", *(["-c", cipher] if cipher else [])]
    command = sftp_command(port, user, key, known_hosts, *options, batch=script)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=cwd, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


class Target:
    """Where uploads go: the port, login, pinned host key and remote folder."""

    def __init__(
        self, label: str, port: int, user: str, known: str, folder: str, local_folder: Path
    ) -> None:
        self.label, self.port, self.user, self.folder = label, port, user, folder
        self.local_folder = local_folder
        self.known_hosts = WORK / f"known_hosts_{label}"
        self.known_hosts.write_text(known + "\n")


def measure(
    target: Target, file: Path, key: Path, puts: int, cipher: str | None, cwd: Path
) -> float:
    """Seconds per upload of ``file``: one session of ``puts`` puts minus an empty session."""
    empty = sftp(target.port, target.user, target.known_hosts, key, "pwd\n", cipher, cwd)
    batch = "".join(f"put {file.resolve()} {target.folder}/up{i}.tmp\n" for i in range(puts))
    total = sftp(target.port, target.user, target.known_hosts, key, batch, cipher, cwd)
    for i in range(puts):
        (target.local_folder / f"up{i}.tmp").unlink(missing_ok=True)
    return (total - empty) / puts


def wait_event(root: Path, kind: str, timeout: float = 300.0, **match: object) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(root, kind, **match)
        if found:
            return found[0]
        time.sleep(0.05)
    raise TimeoutError(kind)


def wall(event: dict) -> datetime:
    return datetime.fromisoformat(event["wall"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--puts", type=int, default=3)
    parser.add_argument("--cipher", help="e.g. aes128-gcm@openssh.com (default: OpenSSH's)")
    parser.add_argument("--skip-processing", action="store_true", help="throughput only")
    args = parser.parse_args()

    file = send_file(args.records)
    size_mb = file.stat().st_size / 1e6
    key = client_key()
    authorized = WORK / "authorized_keys"
    shutil.copy(key.with_suffix(".pub"), authorized)
    tmp = Path(tempfile.mkdtemp(prefix="bench-sftp-", dir=WORK))
    root = tmp / "sandbox"
    port = free_port()
    server = subprocess.Popen(
        common.sandbox_serve_command(root, port, authorized, START),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    results: dict[str, object] = {
        "file": file.name,
        "records": args.records,
        "mb": round(size_mb, 1),
        "cipher": args.cipher or "default",
    }
    sshd = None
    try:
        lines = [server.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        known = lines[2].split(" ", 1)[1].strip()
        targets = [Target("sandbox", port, "sandbox", known, "Send", root / "Send")]
        if find_sshd():
            sshd = PrivateSshd(tmp / "sshd", authorized).start()
            (tmp / "sshd-drop").mkdir()
            targets.append(
                Target(
                    "sshd",
                    sshd.port,
                    sshd.user,
                    sshd.known_hosts_line(),
                    str((tmp / "sshd-drop").resolve()),
                    tmp / "sshd-drop",
                )
            )
        else:
            print("sshd not installed: measuring the sandbox only (.ci/ensure-sshd)")
        seconds: dict[str, list[float]] = {t.label: [] for t in targets}
        for round_ in range(args.rounds):
            for target in targets if round_ % 2 == 0 else targets[::-1]:
                seconds[target.label].append(
                    measure(target, file, key, args.puts, args.cipher, tmp)
                )
        for label, values in seconds.items():
            results[f"{label}_s"] = [round(v, 3) for v in values]
            results[f"{label}_mb_s"] = round(size_mb / statistics.median(values), 1)
        if "sshd_mb_s" in results:
            results["ratio"] = round(results["sandbox_mb_s"] / results["sshd_mb_s"], 3)

        if args.skip_processing:
            return
        # Processing: upload once more, rename, follow the event log.
        target = targets[0]
        sftp(
            target.port,
            target.user,
            target.known_hosts,
            key,
            f"put {file.resolve()} Send/{NAME}.tmp\n",
            args.cipher,
            tmp,
        )
        renamed = time.perf_counter()
        sftp(
            target.port,
            target.user,
            target.known_hosts,
            key,
            f"rename Send/{NAME}.tmp Send/{NAME}.csv\n",
            args.cipher,
            tmp,
        )
        done = wait_event(root, "file_done", name=f"{NAME}.csv")
        results["rename_to_done_s"] = round(time.perf_counter() - renamed, 2)
        locked = wait_event(root, "file_locked", name=f"{NAME}.csv")
        results["lock_to_done_s"] = round((wall(done) - wall(locked)).total_seconds(), 2)
        scheduled = wait_event(root, "campaign_scheduled", file=f"{NAME}.csv")
        results["plan_s"] = round((wall(scheduled) - wall(done)).total_seconds(), 2)
        batch = wait_event(root, "batch_done", file=f"{NAME}.csv")
        results["send_1m_events_s"] = round((wall(batch) - wall(scheduled)).total_seconds(), 2)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "smsdrop",
                "sandbox",
                "advance",
                "--root",
                str(root),
                "--by",
                "4d",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        advanced = wait_event(root, "clock_advanced")
        ack = wait_event(root, "report_written", file=f"{NAME}.csv")
        results["ack_write_s"] = round((wall(ack) - wall(advanced)).total_seconds(), 2)
        results["events_mb"] = round((root / ".sandbox" / "events.jsonl").stat().st_size / 1e6)
    finally:
        if sshd is not None:
            sshd.stop()
        server.terminate()
        server.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
