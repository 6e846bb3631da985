"""The sandbox survives a restart: campaigns in flight, pending ACKs and replies, the balance
and the clock (issue 10). The oracle is the event log: every message decided exactly once,
every ACK and reply produced once, the same as a run that was never interrupted.

The hard test kills the real ``smsdrop sandbox serve`` process (its own process group) with
SIGKILL at random moments of a campaign, restarts it on the same root each time, and
compares everything it produced with an uninterrupted in-process run of the same files,
seed and clock jumps.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import asyncssh
import pytest

from smsdrop.naming import FileKind, parse_name
from smsdrop.sandbox import Sandbox, events
from smsdrop.sandbox.cli import serve_command
from smsdrop.sandbox.reference import free_port
from smsdrop.sandbox.replies import write_request
from tests.sandbox.conftest import START, Keys, MakeSandbox, listing, mobiles, records, upload

NAME = "SEND-12345-20261201-1000-later.csv"


def sent_once(root: Path) -> Counter:
    """(file, row) → how many times a message_sent/message_not_sent says it was decided."""
    decided = events(root, "message_sent") + events(root, "message_not_sent")
    return Counter((e["file"], e["row"]) for e in decided)


def test_a_campaign_in_flight_survives_a_clean_restart(make_sandbox: MakeSandbox, keys) -> None:
    first = make_sandbox(balance=150)
    upload(first, keys.ed25519, NAME, records(mobiles(100)))
    first.wait_for("campaign_scheduled", file=NAME)
    clock_then = first.clock.now()
    first.stop()
    (first.layout.send / NAME.replace(".csv", ".done")).unlink()  # the client tidied up
    again = make_sandbox(root=first.config.root, balance=150)
    assert again.clock.now() >= clock_then  # the clock resumes, never goes back
    assert again.balance == 150
    again.advance(timedelta(hours=1))
    again.wait_for("batch_done", file=NAME)
    again.advance(timedelta(days=1, minutes=1))
    ack = again.wait_for("report_written", file=NAME)[0]
    again.settle()
    assert set(sent_once(again.layout.root).values()) == {1}
    assert len(sent_once(again.layout.root)) == 100 and ack["records"] == 100
    assert again.balance == 50  # debited once, by the process that sent
    assert len(again.events("campaign_scheduled")) == 1
    assert listing(again, "Report")[0] == NAME.replace("SEND-", "ACK-")


def test_balance_and_replies_carry_over_between_campaigns(make_sandbox, keys: Keys) -> None:
    first = make_sandbox(balance=120, stop_rate=0.5, mo_rate=0.5)
    upload(first, keys.ed25519, "SEND-12345-20261201-0800-one.csv", records(mobiles(100)))
    first.wait_for("batch_done")
    first.settle()
    replies_before = len(first.events("reply_received"))
    first.stop()
    again = make_sandbox(root=first.config.root, balance=120, stop_rate=0.5, mo_rate=0.5)
    assert again.balance == 20
    upload(again, keys.ed25519, "SEND-12345-20261201-0800-two.csv", records(mobiles(50, 100)))
    done = again.wait_for("batch_done", file="SEND-12345-20261201-0800-two.csv")[0]
    assert done["sent"] == 20 and done["statuses"]["no_credit"] == 30
    again.advance(timedelta(days=2))
    again.wait_for("report_written", count=2)
    again.settle()
    replies = again.events("reply_received", source="simulated")
    assert len(replies) > replies_before  # the first campaign's later replies still came
    assert len({(e["file"], e["row"]) for e in replies}) == len(replies)  # each once
    delivered = len(again.events("message_sent", status="delivered"))
    assert len(replies) == delivered  # every delivered message answered (rates sum to 1)


def test_a_request_taken_before_a_kill_is_not_taken_again(make_sandbox, keys: Keys) -> None:
    first = make_sandbox()
    upload(first, keys.ed25519, "SEND-12345-20261201-0800-req.csv", records(mobiles(5)))
    first.wait_for("batch_done")
    first.stop()
    # A kill between the reply being logged and its request file being removed:
    request = {"type": "reply", "msisdn": mobiles(5)[2][1], "text": "STOP", "id": "r1"}
    write_request(first.layout.inbox, dict(request))
    again = make_sandbox(root=first.config.root)
    again.wait_for("reply_received", request="r1")
    again.stop()
    write_request(first.layout.inbox, dict(request))  # put back, as if never removed
    third = make_sandbox(root=first.config.root)
    third.settle()
    assert len(third.events("reply_received", request="r1")) == 1
    assert not list(third.layout.inbox.glob("*.json"))
    stop = third.layout.report / "STOP-12345-20261201-0800-req.csv"
    assert stop.read_bytes().count(b"\r\n") == 1


# --- SIGKILL of the real process, mid-campaign --------------------------------------------

FILES = {  # due 10:00, 11:00, 12:00 Paris: accepted before, sent at those instants
    f"SEND-12345-20261201-{hour}-kill{index}.csv": records(mobiles(20_000, index * 20_000))
    for index, hour in enumerate(("1000", "1100", "1200"))
}
#: Simulated jumps, in order (the same for the killed and the reference run).
#: Each is followed by a SIGKILL at a random moment: before 10:00, across each send, while
#: replies come, across the ACKs (18:00 Paris), after.
JUMPS = [timedelta(minutes=m) for m in (50, 20, 60, 60, 90, 240, 360)]
#: 20,000 messages a file would wait 4 days for their ACK: 6 hours here.
SETTINGS = {"seed": 11, "balance": 50_000, "ack_large_delay": timedelta(hours=6)}
SERVE_OPTIONS = ["--seed", "11", "--balance", "50000", "--ack-large-delay", "6h"]


async def _upload_all(port: int, key: Path) -> None:
    async with (
        asyncssh.connect(
            "127.0.0.1",
            port=port,
            username="sandbox",
            client_keys=[str(key)],
            known_hosts=None,
            agent_path=None,
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        for name, data in FILES.items():
            tmp = f"Send/{name[:-4]}.tmp"
            async with sftp.open(tmp, "wb") as handle:
                await handle.write(data)
            await sftp.posix_rename(tmp, f"Send/{name}")


class Served:
    """``smsdrop sandbox serve`` in its own process group, started and killed on demand."""

    def __init__(self, root: Path, keys: Keys, tmp_path: Path) -> None:
        self.root, self.port, self.log = root, free_port(), tmp_path / "serve.log"
        self.command = serve_command(
            root, self.port,
            "--authorized-keys", str(keys.authorized), "--host-key", str(keys.host),
            "--start", START.isoformat(), "--poll-interval", "0.05", "-q", *SERVE_OPTIONS,
        )  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command, stdout=out, stderr=out, start_new_session=True
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while len(events(self.root, "sandbox_started")) < self.starts:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)


def _advance(root: Path, delta: timedelta) -> str:
    return write_request(
        root / ".sandbox" / "inbox", {"type": "advance", "seconds": delta.total_seconds()}
    )


def _quiet(root: Path, seconds: float = 1.5, timeout: float = 90.0) -> None:
    """Wait until the log stops growing for ``seconds`` (everything due has happened)."""
    path = root / ".sandbox" / "events.jsonl"
    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.1)
    raise AssertionError("the sandbox never went quiet")


def _outcome(root: Path) -> dict[str, object]:
    decided = events(root, "message_sent") + events(root, "message_not_sent")
    replies = events(root, "reply_received", source="simulated")
    report = root / "Report"
    return {
        "messages": Counter((e["file"], e["row"], e["status"], e["credits"]) for e in decided),
        "replies": Counter((e["file"], e["row"], e["at"], e["text"]) for e in replies),
        "acks": {p.name: p.read_bytes() for p in sorted(report.glob("ACK-*.csv"))},
        "reply_lines": {
            p.name: Counter(p.read_bytes().split(b"\r\n"))
            for p in sorted(report.iterdir())
            if not p.name.startswith("ACK-")
        },
    }


@pytest.mark.slow
def test_sigkill_mid_campaign_sends_every_message_once_and_loses_nothing(
    tmp_path: Path, keys: Keys, make_sandbox: MakeSandbox
) -> None:
    rng = random.Random(20261201)
    served = Served(tmp_path / "killed", keys, tmp_path)
    try:
        served.start()
        asyncio.run(_upload_all(served.port, keys.ed25519))
        time.sleep(rng.uniform(0.0, 0.3))
        served.kill()  # during the checks and plans of the three files
        served.start()
        while len(events(served.root, "campaign_scheduled")) < len(FILES):
            time.sleep(0.05)
        for jump in JUMPS:
            _advance(served.root, jump)
            time.sleep(rng.uniform(0.05, 0.8))
            served.kill()
            served.start()
        _advance(served.root, timedelta(days=3))  # every late reply falls due
        _quiet(served.root)
        served.stop()
    finally:
        served.stop()
    killed = _outcome(served.root)

    reference = make_sandbox(**SETTINGS)  # the same files, seed and jumps, never killed
    for name, data in FILES.items():
        upload(reference, keys.ed25519, name, data)
        reference.wait_for("campaign_scheduled", file=name)
    for jump in [*JUMPS, timedelta(days=3)]:
        reference.advance(jump)
        reference.settle(timeout=60)
    reference.stop()
    expected = _outcome(reference.layout.root)

    assert served.starts == len(JUMPS) + 2
    messages = killed["messages"]
    assert sum(messages.values()) == 3 * 20_000 == len(messages)  # each decided exactly once
    assert set(sent_once(served.root).values()) == {1}
    assert messages == expected["messages"]
    assert Counter(status for _, _, status, _ in messages)["no_credit"] == 10_000
    assert killed["replies"] == expected["replies"] and max(killed["replies"].values()) == 1
    assert sum(killed["replies"].values()) > 1000
    assert killed["acks"] == expected["acks"] and len(killed["acks"]) == 3
    assert killed["reply_lines"] == expected["reply_lines"]
    for name in FILES:
        ack = parse_name(name).with_kind(FileKind.ACK).name
        assert len(events(served.root, "report_written", name=ack)) == 1
    assert not events(served.root, "internal_error")


@pytest.mark.parametrize("moment", ["after_rename", "after_append"])
def test_half_done_reports_are_repaired_at_start(make_sandbox, keys: Keys, moment) -> None:
    """The two windows a kill can hit between a client-visible effect and its event: an
    ACK renamed into Report/ but not logged (logged at start, not rewritten), reply bytes
    appended but not logged (cut at start, produced again)."""
    settings = {"stop_rate": 0.5, "mo_rate": 0.5}
    first: Sandbox = make_sandbox(**settings)
    upload(first, keys.ed25519, "SEND-12345-20261201-0800-half.csv", records(mobiles(20)))
    first.wait_for("batch_done")
    first.settle()
    first.stop()
    report = first.layout.report
    if moment == "after_rename":
        ack = report / "ACK-12345-20261201-0800-half.csv"
        ack.write_bytes(b"as the killed process left it\r\n")
    else:
        smsmo = report / "SMSMO-12345-20261201-0800-half.csv"
        before = smsmo.read_bytes() if smsmo.exists() else b""
        with open(smsmo, "ab") as handle:
            handle.write(b"+33612000003;20261201;090000;forged;C0000003\r\n")
    again = make_sandbox(root=first.config.root, **settings)
    again.settle()
    if moment == "after_rename":
        [event] = again.events("report_written")
        assert event["recovered"] is True
        assert ack.read_bytes() == b"as the killed process left it\r\n"  # not written twice
    else:
        assert smsmo.read_bytes() == before
        again.advance(timedelta(days=2))
        again.settle()
        replies = again.events("reply_received", source="simulated")
        assert len({(e["file"], e["row"]) for e in replies}) == len(replies) == 20


TORN = r'''
import json, os, signal, sys, time
from datetime import datetime
from pathlib import Path

from smsdrop.sandbox import Sandbox, SandboxConfig
from smsdrop.sandbox.events import EventLog

write_lines = EventLog.write_lines


def torn(self, data):
    """Half of the first batch's message lines, the last one torn, then SIGKILL."""
    if data.startswith(b'{"kind":"message_sent"'):
        write_lines(self, data[: len(data) // 2 + 7])
        os.kill(os.getpid(), signal.SIGKILL)
    write_lines(self, data)


EventLog.write_lines = torn
settings = json.loads(sys.argv[1])
settings["start"] = datetime.fromisoformat(settings["start"])
for key in ("authorized_keys", "host_key"):
    settings[key] = Path(settings[key])
sandbox = Sandbox(SandboxConfig(**settings)).start()
print(sandbox.port, flush=True)
time.sleep(120)
'''


def test_sigkill_in_the_middle_of_a_batch_is_completed_not_repeated(
    tmp_path: Path, keys: Keys, make_sandbox: MakeSandbox
) -> None:
    """The worst moment, made exact: the process dies by SIGKILL while it writes a batch's
    message lines (half written, the last line torn, no batch_done, no snapshot since the
    campaign was scheduled). The restart decides only the rest, debits only them."""
    import json
    import sys

    root = tmp_path / "torn"
    settings = {
        "root": str(root), "port": 0, "seed": 7, "start": START.isoformat(), "balance": 300,
        "authorized_keys": str(keys.authorized), "host_key": str(keys.host),
        "poll_interval": 0.05, "fsync": False,
    }  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", TORN, json.dumps(settings)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        name = "SEND-12345-20261201-0800-torn.csv"
        data = records(mobiles(500))

        async def send() -> None:
            async with (
                asyncssh.connect(
                    "127.0.0.1", port=port, username="sandbox", known_hosts=None,
                    client_keys=[str(keys.ed25519)], agent_path=None,
                ) as conn,
                conn.start_sftp_client() as sftp,
            ):  # fmt: skip
                async with sftp.open(f"Send/{name[:-4]}.tmp", "wb") as handle:
                    await handle.write(data)
                await sftp.posix_rename(f"Send/{name[:-4]}.tmp", f"Send/{name}")

        asyncio.run(send())
        assert proc.wait(60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    log = (root / ".sandbox" / "events.jsonl").read_bytes()
    half = len(events(root, "message_sent"))
    assert 0 < half < 300 and log.count(b'"kind":"message_sent"') == half + 1  # one torn
    assert not events(root, "batch_done")

    again = make_sandbox(root=root, balance=300)
    again.wait_for("batch_done")
    again.settle()
    decided = sent_once(root)
    assert len(decided) == 500 and set(decided.values()) == {1}
    assert len(again.events("message_sent")) == 300  # the first 300 credits, once
    assert len(again.events("message_not_sent", status="no_credit")) == 200
    assert sum(e["credits"] for e in again.events("message_sent")) == 300
    assert again.balance == 0
    [done] = again.events("batch_done")
    assert done["messages"] == 500 - half  # only the rest was decided
