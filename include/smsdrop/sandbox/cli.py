"""``smsdrop sandbox serve|reply|advance``: the provider twin from the command line.

Kept apart from :mod:`smsdrop.cli` so the main command only gains two lines, and light at
import (asyncssh is imported when a sandbox command runs, not when ``smsdrop`` parses).

Nothing printed here ever holds a full phone number, a message text, a password or a
private key: numbers are masked, texts and secrets are not shown at all.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from smsdrop.argtypes import aware_datetime, duration, time_of_day
from smsdrop.dropbox import ACK_LARGE_DELAY, ACK_LARGE_FROM, ACK_SMALL_DELAY
from smsdrop.errors import InputError, SmsdropError

__all__ = ["add_parser", "run", "serve_command"]


def serve_command(root: Path, port: int, *options: str) -> list[str]:
    """The command line that runs ``smsdrop sandbox serve`` in a process of its own (with
    this interpreter), for benchmarks, tests and anyone scripting the sandbox."""
    return [
        sys.executable, "-m", "smsdrop", "sandbox", "serve",
        "--root", str(root), "--port", str(port), *options,
    ]  # fmt: skip


def _rate(text: str) -> tuple[str, float]:
    outcome, _, value = text.partition("=")
    try:
        return outcome.strip().lower(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected OUTCOME=RATE, e.g. failed=0.1: {text!r}"
        ) from None


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _size(text: str) -> int | None:
    """``10G``, ``500M``, ``1048576``; ``none`` for no limit."""
    if text.strip().lower() == "none":
        return None
    number, unit = text.strip().upper().rstrip("B"), ""
    if number and number[-1] in _UNITS:
        number, unit = number[:-1], number[-1]
    try:
        return int(float(number) * _UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 10G or 500M: {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``sandbox`` and its subcommands to the ``smsdrop`` parser."""
    sandbox = sub.add_parser("sandbox", help="run a twin of the provider's SFTP drop-box")
    cmds = sandbox.add_subparsers(dest="sandbox_command", required=True, parser_class=type(sandbox))

    p = cmds.add_parser("serve", help="start the sandbox in the foreground (Ctrl-C stops it)")
    p.add_argument("--root", type=Path, required=True, help="holds Send/, Report/, .sandbox/")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2222)
    p.add_argument("--user", default="sandbox", help="the SFTP login (default sandbox)")
    p.add_argument("--authorized-keys", type=Path, help="OpenSSH authorized_keys file")
    p.add_argument("--password-file", type=Path, help="file whose first line is the password")
    p.add_argument("--host-key", type=Path, help="default: ROOT/.sandbox/host_ed25519")
    p.add_argument(
        "--allow-ip",
        action="extend",
        nargs="+",
        metavar="ADDR",
        help="addresses or networks allowed to connect (default: loopback)",
    )
    p.add_argument("--seed", type=int, default=0, help="outcomes and replies follow it")
    p.add_argument("--start", type=aware_datetime, help="simulated start instant (ISO 8601)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    g = p.add_argument_group("account")
    g.add_argument("--service-id", help="refuse files of another SERVICEID")
    g.add_argument(
        "--transactional",
        action="store_true",
        help="no French marketing window (default: a marketing account)",
    )
    g.add_argument(
        "--window-end", type=time_of_day, help="end of the French window (default 22:00)"
    )
    g.add_argument("--long-sms", action="store_true", help="allow up to 5 segments")
    g.add_argument("--unicode", action="store_true", help="send non-GSM texts as UCS-2")
    g.add_argument("--file-encoding", default="utf-8")
    g.add_argument("--max-records", type=int, default=1_000_000)
    g.add_argument("--balance", type=int, help="credits (1 per segment); default unlimited")
    g.add_argument(
        "--quota", type=_size, default="10G", help="bytes the account may store in Send/ (none)"
    )
    g.add_argument(
        "--scratch",
        metavar="NAME",
        help="a folder under the root also writable and never processed (benchmarks)",
    )
    g.add_argument(
        "--max-auth-failures", type=int, default=3, help="failed logins before a connection is cut"
    )
    g.add_argument(
        "--auth-failure-delay",
        type=float,
        default=1.0,
        help="real seconds an address waits per attempt after a failure (doubles, max 30)",
    )
    g = p.add_argument_group("network and recipients")
    g.add_argument(
        "--rate",
        type=_rate,
        action="append",
        metavar="OUTCOME=X",
        help="outcome weight: delivered, sent, failed, expired (repeatable)",
    )
    g.add_argument("--stop-rate", type=float, default=0.01)
    g.add_argument("--mo-rate", type=float, default=0.02)
    g.add_argument(
        "--reply-delay",
        type=duration,
        default=timedelta(minutes=30),
        help="mean delay of a reply (e.g. 30m)",
    )
    g = p.add_argument_group("delays (simulated time unless said)")
    g.add_argument("--ack-small-delay", type=duration, default=ACK_SMALL_DELAY)
    g.add_argument("--ack-large-delay", type=duration, default=ACK_LARGE_DELAY)
    g.add_argument("--ack-large-from", type=int, default=ACK_LARGE_FROM)
    g.add_argument("--retention", type=duration, default=timedelta(days=30))
    g.add_argument("--poll-interval", type=float, default=0.5, help="real seconds")
    g.add_argument("--lock-delay", type=float, default=0.0, help="real seconds before .lock")
    g.add_argument("--max-write-len", type=int, default=261_120)
    g.add_argument("--ciphers", help="comma-separated SSH ciphers to offer (default: AES-GCM)")
    g.add_argument(
        "--no-fsync",
        action="store_true",
        help="do not fsync the saved state (faster; a killed process still loses nothing)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")

    p = cmds.add_parser("reply", help="a recipient replies (STOP keywords also go to STOP)")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--msisdn", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the sandbox")
    p.add_argument("--json", action="store_true")

    p = cmds.add_parser("advance", help="move a running sandbox's clock forward")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--by", type=duration, required=True, help="e.g. 4d")
    p.add_argument("--wait", type=float, default=10.0)


def run(args: argparse.Namespace) -> int:
    """Dispatch a ``smsdrop sandbox …`` command."""
    return {"serve": _serve, "reply": _reply, "advance": _advance}[args.sandbox_command](args)


def _config(args: argparse.Namespace):
    from smsdrop.sandbox.config import (
        DEFAULT_ALLOWED,
        DEFAULT_CIPHERS,
        DEFAULT_RATES,
        SandboxConfig,
    )

    rates = dict(DEFAULT_RATES)
    for outcome, value in args.rate or []:
        rates[outcome] = value
    try:
        return SandboxConfig(
            root=args.root,
            host=args.host,
            port=args.port,
            user=args.user,
            authorized_keys=args.authorized_keys,
            password_file=args.password_file,
            host_key=args.host_key,
            allow_ips=tuple(args.allow_ip or DEFAULT_ALLOWED),
            seed=args.seed,
            start=args.start,
            speed=args.speed,
            service_id=args.service_id,
            marketing=not args.transactional,
            window_end=args.window_end,
            long_sms=args.long_sms,
            unicode=args.unicode,
            file_encoding=args.file_encoding,
            max_records=args.max_records,
            balance=args.balance,
            rates=rates,
            stop_rate=args.stop_rate,
            mo_rate=args.mo_rate,
            reply_delay_mean=args.reply_delay,
            ack_small_delay=args.ack_small_delay,
            ack_large_delay=args.ack_large_delay,
            ack_large_from=args.ack_large_from,
            retention=args.retention,
            poll_interval=args.poll_interval,
            lock_delay=args.lock_delay,
            max_write_len=args.max_write_len,
            ciphers=tuple(args.ciphers.split(",")) if args.ciphers else DEFAULT_CIPHERS,
            quota=args.quota,
            max_auth_failures=args.max_auth_failures,
            auth_failure_delay=args.auth_failure_delay,
            auth_failure_delay_max=max(30.0, args.auth_failure_delay),
            fsync=not args.no_fsync,
            scratch=args.scratch,
        )
    except ValueError as error:
        raise InputError(str(error)) from None


def _serve(args: argparse.Namespace) -> int:
    from smsdrop.sandbox.app import Sandbox

    config = _config(args)
    for path in (config.authorized_keys, config.password_file):
        if path is not None and not path.is_file():
            raise InputError("no such file", file=str(path))
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    sandbox = Sandbox(config)
    try:
        sandbox.start()
    except OSError as error:
        raise SmsdropError(f"cannot listen on {config.host}:{config.port}: {error}") from None
    except ValueError as error:  # e.g. an unknown cipher name
        raise InputError(str(error)) from None
    where = f"{config.host}:{sandbox.port}"
    print(f"smsdrop sandbox listening on {where} (user {config.user}), root {config.root}")
    print(f"host key: {sandbox.host_public_key}")
    print(f"known_hosts: {sandbox.known_hosts_line()}")
    if sandbox.client_key_path:
        print(f"client key: {sandbox.client_key_path} (no --authorized-keys given)")
    print(f"clock: {sandbox.clock.now().isoformat(timespec='seconds')} x{config.speed:g}")
    print(f"event log: {sandbox.layout.events} (holds personal data)")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            if not sandbox.running:
                raise SmsdropError("the sandbox stopped unexpectedly (see the log)")
    finally:
        sandbox.stop()
    print("smsdrop sandbox stopped")
    return 0


def _wait_event(root: Path, request_id: str, kinds: tuple[str, ...], wait: float) -> dict | None:
    from smsdrop.sandbox.events import events

    deadline = time.monotonic() + wait
    while True:
        for kind in kinds:
            found = events(root, kind, request=request_id)
            if found:
                return found[0]
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _reply(args: argparse.Namespace) -> int:
    from smsdrop.msisdn import mask_one
    from smsdrop.sandbox.layout import Layout
    from smsdrop.sandbox.replies import is_stop, write_request

    layout = Layout(args.root)
    if not layout.private.is_dir():
        raise InputError("not a sandbox root (no .sandbox/ inside)", file=str(args.root))
    request_id = write_request(
        layout.inbox, {"type": "reply", "msisdn": args.msisdn, "text": args.text}
    )
    event = _wait_event(args.root, request_id, ("reply_received", "reply_unmatched"), args.wait)
    shown = mask_one(args.msisdn) if args.msisdn.startswith("+") else "***"
    if event is None:
        out = {"status": "queued", "request": request_id, "stop": is_stop(args.text)}
        message = f"reply from {shown} queued: the sandbox takes it when it runs"
        code = 0
    elif event["kind"] == "reply_unmatched":
        out = {"status": "unmatched", "request": request_id}
        message = f"no message was sent to {mask_one(event['msisdn'])}: reply not recorded"
        code = 1
    else:
        out = {
            "status": "received",
            "request": request_id,
            "stop": event["stop"],
            "reports": event["reports"],
            "at": event["at"],
        }
        message = f"reply from {mask_one(event['msisdn'])} added to {', '.join(event['reports'])}"
        code = 0
    stream = sys.stdout if code == 0 or args.json else sys.stderr
    print(json.dumps(out) if args.json else message, file=stream)
    return code


def _advance(args: argparse.Namespace) -> int:
    from smsdrop.sandbox.layout import Layout
    from smsdrop.sandbox.replies import write_request

    layout = Layout(args.root)
    if not layout.private.is_dir():
        raise InputError("not a sandbox root (no .sandbox/ inside)", file=str(args.root))
    request_id = write_request(
        layout.inbox, {"type": "advance", "seconds": args.by.total_seconds()}
    )
    event = _wait_event(args.root, request_id, ("clock_advanced",), args.wait)
    if event is None:
        print("queued: the sandbox advances its clock when it runs")
    else:
        print(f"sandbox clock now {event['at']}")
    return 0
