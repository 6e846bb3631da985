"""``smsdrop sandbox serve|reply|advance``: a foreground server that stops cleanly, and the
commands that talk to a running sandbox through its inbox. Nothing personal is printed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import asyncssh
import pytest

from smsdrop.cli import main
from smsdrop.sandbox import events
from smsdrop.sandbox.cli import serve_command
from tests.sandbox.conftest import Keys, mobiles, records, upload

NAME = "SEND-12345-20261201-0800-cli.csv"


def test_serve_prints_what_clients_need_and_stops_on_sigterm(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = subprocess.Popen(
        serve_command(root, 0, "--start", "2026-12-01T09:00+01:00", "--speed", "60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = [proc.stdout.readline() for _ in range(6)]  # type: ignore[union-attr]
        listening, host_key, known, client, clock, log = lines
        port = int(listening.split()[4].rsplit(":", 1)[1])
        assert host_key.startswith("host key: ssh-ed25519 AAAA")
        assert known.startswith(f"known_hosts: [127.0.0.1]:{port} ssh-ed25519 ")
        key = Path(client.split()[2])
        assert key == root / ".sandbox" / "client_ed25519"
        assert clock.startswith("clock: 2026-12-01T08:00") and "x60" in clock
        assert "personal data" in log
        data = records(mobiles(3))

        async def send() -> None:
            async with (
                asyncssh.connect(
                    "127.0.0.1",
                    port,
                    username="sandbox",
                    client_keys=[str(key)],
                    known_hosts=None,
                    agent_path=None,
                ) as conn,
                conn.start_sftp_client() as sftp,
            ):
                async with sftp.open(f"Send/{NAME[:-4]}.tmp", "wb") as handle:
                    await handle.write(data)
                await sftp.posix_rename(f"Send/{NAME[:-4]}.tmp", f"Send/{NAME}")

        asyncio.run(send())
        for _ in range(200):
            if events(root, "batch_done"):
                break
            asyncio.run(asyncio.sleep(0.05))
        assert events(root, "batch_done")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out.strip().endswith("smsdrop sandbox stopped")
    everything = out + err
    assert "locked" in err and ".done" in err
    for number in (row[1] for row in mobiles(3)):
        assert number not in everything and number[3:] not in everything
    assert "Promo" not in everything
    assert events(root, "sandbox_stopped")


def test_serve_usage_errors_exit_1(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "sandbox",
            "serve",
            "--root",
            str(tmp_path),
            "--authorized-keys",
            str(tmp_path / "missing"),
        ]
    )
    assert code == 1 and "no such file" in capsys.readouterr().err
    assert main(["sandbox", "serve", "--root", str(tmp_path), "--allow-ip", "nope"]) == 1
    with pytest.raises(SystemExit) as exit_:
        main(["sandbox", "serve", "--root", str(tmp_path), "--start", "2026-12-01T09:00"])
    assert exit_.value.code == 2  # a naive start time is a usage error


def test_reply_and_advance_commands_reach_a_running_sandbox(sandbox, keys: Keys, capsys) -> None:
    root = str(sandbox.layout.root)
    number = mobiles(2)[1][1]
    upload(sandbox, keys.ed25519, NAME, records(mobiles(2)))
    sandbox.wait_for("batch_done", file=NAME)
    assert main(["sandbox", "reply", "--root", root, "--msisdn", number, "--text", "STOP"]) == 0
    out = capsys.readouterr().out
    assert "+33*******01" in out and "STOP-12345-20261201-0800-cli.csv" in out
    assert number not in out
    assert (
        main(["sandbox", "reply", "--root", root, "--msisdn", number, "--text", "Merci", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "received" and result["stop"] is False
    assert (
        main(["sandbox", "reply", "--root", root, "--msisdn", "+33699999999", "--text", "hi"]) == 1
    )
    assert "+33*******99" in capsys.readouterr().err
    before = sandbox.clock.now()
    assert main(["sandbox", "advance", "--root", root, "--by", "2d"]) == 0
    assert sandbox.clock.now() - before >= timedelta(days=2)
    assert "sandbox clock now" in capsys.readouterr().out
    sandbox.wait_for("report_written", file=NAME)


def test_reply_without_a_running_sandbox_is_queued(tmp_path: Path, capsys) -> None:
    (tmp_path / ".sandbox").mkdir()
    code = main(
        [
            "sandbox",
            "reply",
            "--root",
            str(tmp_path),
            "--msisdn",
            "+33612345678",
            "--text",
            "STOP",
            "--wait",
            "0",
        ]
    )
    assert code == 0 and "queued" in capsys.readouterr().out
    assert len(list((tmp_path / ".sandbox" / "inbox").glob("*.json"))) == 1
    assert (
        main(["sandbox", "reply", "--root", str(tmp_path / "no"), "--msisdn", "+3", "--text", "x"])
        == 1
    )
