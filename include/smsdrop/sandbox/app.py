"""The sandbox as one object: ``Sandbox(config).start()`` … ``.stop()``, or ``with``.

It runs its own asyncio loop in a background thread of the calling process, so a test can
start one in milliseconds, drive its clock (:meth:`Sandbox.advance`) and read its event
log directly. For a separate process (demo, benchmark, someone's manual test) use the
command: ``smsdrop sandbox serve`` wraps this same class and stops on SIGINT/SIGTERM.

Threads: the event loop (SSH/SFTP, the ``Send/`` scan, timers) and one worker (file
checks, sends, ACKs, replies, retention, inbox) — see :mod:`smsdrop.sandbox.scheduler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Self

import asyncssh

from smsdrop.sandbox.clock import SimClock
from smsdrop.sandbox.config import SandboxConfig
from smsdrop.sandbox.engine import Engine, FileAges
from smsdrop.sandbox.events import EventLog, EventTail, events
from smsdrop.sandbox.intake import Intake, OpenFiles
from smsdrop.sandbox.layout import Layout
from smsdrop.sandbox.replies import read_requests, write_request
from smsdrop.sandbox.scheduler import Scheduler
from smsdrop.sandbox.server import Context, SandboxSSHServer, load_authorized_keys
from smsdrop.sandbox.state import StateStore, Tail, read_tail

__all__ = ["Sandbox", "load_or_create_key"]

log = logging.getLogger("smsdrop.sandbox")


def load_or_create_key(path: Path, comment: str) -> asyncssh.SSHKey:
    """A persistent ed25519 private key: read it, or create it (mode 0600) the first time."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    key.write_private_key(str(partial))
    partial.chmod(0o600)
    partial.replace(path)
    key.write_public_key(str(path) + ".pub")
    return key


class Sandbox:
    """A running provider twin. Not reusable: one start, one stop."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.layout = Layout(config.root)
        self.clock = SimClock(config.start, config.speed)
        self.host_key: asyncssh.SSHKey | None = None
        self.client_key_path: Path | None = None
        self.port: int = config.port
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._scheduler: Scheduler | None = None
        self._engine: Engine | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Sandbox:
        """Listen and process; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("a Sandbox starts once")
        self._prepare()
        self._thread = threading.Thread(target=self._run, name="sandbox-loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the sandbox did not start")
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Close the listener and every connection, finish the running job, stop."""
        if self._thread is None or self._loop is None or self._stop is None:
            return
        if self._thread.is_alive() and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- what clients need ----------------------------------------------------------------

    @property
    def host_public_key(self) -> str:
        """The host key's public line (``ssh-ed25519 AAAA… comment``) for clients to pin."""
        assert self.host_key is not None
        return self.host_key.export_public_key("openssh").decode().strip()

    def known_hosts_line(self, host: str | None = None) -> str:
        """An OpenSSH ``known_hosts`` line for this server (``[host]:port`` off port 22)."""
        host = host or self.config.host
        where = host if self.port == 22 else f"[{host}]:{self.port}"
        key_type, key_data = self.host_public_key.split()[:2]
        return f"{where} {key_type} {key_data}"

    def airflow_connection(self, key_file: Path | None = None) -> dict[str, Any]:
        """The ``mtarget_default`` connection for this sandbox, as the JSON document an
        ``AIRFLOW_CONN_MTARGET_DEFAULT`` variable takes: its host key pinned, a client key
        (default the generated one)."""
        key = key_file or self.client_key_path
        if key is None:
            raise ValueError("give the client key: the sandbox was started with its own keys")
        return {
            "conn_type": "sftp",
            "host": self.config.host,
            "port": self.port,
            "login": self.config.user,
            "extra": {
                "key_file": str(key),
                "host_key": " ".join(self.host_public_key.split()[:2]),
            },
        }

    # --- driving it (tests, demo) ---------------------------------------------------------

    def advance(self, delta: timedelta) -> datetime:
        """Jump the simulated clock forward; what fell due runs at once."""
        return self.clock.advance(delta)

    def events(self, kind: str | None = None, **match: Any) -> list[dict]:
        return events(self.layout.root, kind, **match)

    def wait_for(
        self, kind: str, count: int = 1, timeout: float = 20.0, **match: Any
    ) -> list[dict]:
        """Wait (real time) until the log holds ``count`` events of ``kind`` matching."""
        deadline = time.monotonic() + timeout
        tail, found = EventTail(self.layout.root, kind, **match), []
        while True:
            found += tail.poll()
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)}/{count} {kind} event(s) {match} after {timeout}s")
            time.sleep(0.02)

    @contextlib.contextmanager
    def fast_forward(
        self, step: timedelta = timedelta(hours=6), interval: float = 0.2
    ) -> Iterator[None]:
        """While inside, jump the clock by ``step`` every ``interval`` real seconds as long
        as an accepted file still waits for its ACK and a client is looking for an ACK not
        written yet — so a client that waits for reports (a DAG run, the demo) gets them in
        seconds, whatever the day and the delay, while files still being uploaded (a
        campaign's later files) arrive at the time they were meant for."""
        stop = threading.Event()

        def run() -> None:
            accepted, acked = EventTail(self.layout.root, "file_done"), set()
            acks = EventTail(self.layout.root, "report_written", report="ACK")
            waiting: set[str] = set()
            written: set[str] = set()
            while not stop.wait(interval):
                waiting |= {e["name"] for e in accepted.poll()}
                for event in acks.poll():
                    acked.add(event["file"])
                    written.add(event.get("name", ""))
                context = getattr(self, "_context", None)
                asked = dict(context.acks_awaited) if context is not None else {}
                recent = time.monotonic() - 60
                wanted = {n for n, at in asked.items() if at > recent} - written
                if waiting - acked and wanted:
                    self.advance(step)

        thread = threading.Thread(target=run, name="sandbox-fast-forward", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until everything due by the simulated now has happened: scheduled jobs, a
        scan of ``Send/``, inbox requests and retention. Tests call it instead of sleeping
        before they assert that something did *not* happen."""
        if self._loop is None or self._scheduler is None:
            return
        deadline = time.monotonic() + timeout
        for _ in range(2):  # a round may move the clock (inbox) and make jobs due
            if not self._scheduler.wait_idle(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("scheduled jobs still running")
            round_ = asyncio.run_coroutine_threadsafe(self._round(), self._loop)
            round_.result(max(0.0, deadline - time.monotonic()))

    def reply(self, msisdn: str, text: str, timeout: float = 20.0) -> dict:
        """Inject a reply (as ``smsdrop sandbox reply`` does) and wait for its event."""
        request_id = write_request(
            self.layout.inbox, {"type": "reply", "msisdn": msisdn, "text": text}
        )
        return self.wait_for_first(
            ("reply_received", "reply_unmatched"), timeout, request=request_id
        )

    def wait_for_first(self, kinds: tuple[str, ...], timeout: float = 20.0, **match: Any) -> dict:
        """Wait (real time) for the first event of any of ``kinds`` matching ``match`` — an
        outcome with several possible kinds (a file done or rejected, say)."""
        deadline = time.monotonic() + timeout
        while True:
            for kind in kinds:  # one read per kind: the log is filtered on its kind prefix
                found = self.events(kind, **match)
                if found:
                    return found[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {' or '.join(kinds)} event {match} after {timeout}s")
            time.sleep(0.02)

    @property
    def balance(self) -> int | None:
        return self._engine.balance if self._engine else self.config.balance

    # --- inside ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Files, keys and saved state, in the caller's thread (errors surface as plain
        exceptions). On a root that ran before, the clock resumes where it was (state)."""
        self.layout.create()
        self._store = StateStore(self.layout.state, durable=self.config.fsync)
        self._saved = self._store.load()
        self._tail: Tail = read_tail(self.layout.root, self._saved.log_offset if self._saved else 0)
        resumed = [
            t for t in (self._store.resumed_clock(self.clock.speed, self._saved), self._tail.latest)
            if t is not None
        ]  # fmt: skip
        if resumed:
            start = max([*resumed, self.config.start] if self.config.start else resumed)
            self.clock = SimClock(start, self.config.speed)
        key_path = self.config.host_key or self.layout.host_key
        self.host_key = load_or_create_key(key_path, "smsdrop-sandbox-host")
        self._keys = (
            load_authorized_keys(self.config.authorized_keys) if self.config.authorized_keys else []
        )
        self._password = None
        if self.config.password_file:
            self._password = self.config.password_file.read_text("utf-8").splitlines()[0]
        if not self._keys and self._password is None:
            # No authentication configured: a client key of our own, so the sandbox is never
            # open to anyone, and the README can say "use .sandbox/client_ed25519".
            client = load_or_create_key(self.layout.client_key, "smsdrop-sandbox-client")
            self._keys = [client]
            self.client_key_path = self.layout.client_key

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:
            if not self._ready.is_set():
                self._startup_error = error
                self._ready.set()
            else:
                log.exception("the sandbox stopped on an error")

    def _on_error(self, what: str, error: BaseException) -> None:
        # The message of an error raised while reading a file can quote a record (a number,
        # a text): only its type is logged, unless SMSDROP_DEBUG asks for the traceback.
        debug = bool(os.environ.get("SMSDROP_DEBUG"))
        log.error(
            "sandbox %s failed: %s (SMSDROP_DEBUG=1 for the traceback)",
            what,
            type(error).__name__,
            exc_info=error if debug else None,
        )
        self._events.emit("internal_error", self.clock.now(), job=what, error=type(error).__name__)

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop, self._stop = loop, asyncio.Event()
        config = self.config
        self._events = log_ = EventLog(self.layout.events)
        executor = ThreadPoolExecutor(1, thread_name_prefix="sandbox-worker")
        scheduler = Scheduler(self.clock, executor, self._on_error)
        ages = FileAges()
        engine = Engine(config, self.layout, self.clock, log_, scheduler, ages)
        engine.store = self._store
        rejected = engine.recover(self._saved, self._tail)
        open_files = OpenFiles()
        intake = Intake(
            config,
            self.layout,
            self.clock,
            log_,
            engine,
            ages,
            open_files,
            executor,
            self._on_error,
        )
        self._scheduler, self._engine, self._intake = scheduler, engine, intake
        self._open_files, self._executor = open_files, executor
        ctx = Context(
            config, self.layout, self.clock, log_, intake, open_files, self._keys, self._password
        )
        self._context = ctx
        acceptor = await asyncssh.listen(
            config.host,
            config.port,
            server_factory=lambda: SandboxSSHServer(ctx),
            server_host_keys=[self.host_key],
            reuse_address=True,
            encryption_algs=list(config.ciphers),
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
        )
        self.port = acceptor.get_port()
        tasks = [loop.create_task(scheduler.run(), name="scheduler")]
        intake.start(loop, frozenset(rejected))
        tasks.append(loop.create_task(self._housekeeping()))
        log_.emit(
            "sandbox_started",
            self.clock.now(),
            host=config.host,
            port=self.port,
            host_key=self.host_key.get_fingerprint(),
            speed=self.clock.speed,
            allow_ips=list(config.allow_ips),
        )
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            acceptor.close()
            for conn in list(ctx.connections):
                conn.close()
            await acceptor.wait_closed()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.run_in_executor(executor, lambda: engine.commit(force=True))
            await loop.run_in_executor(
                None, lambda: executor.shutdown(wait=True, cancel_futures=True)
            )
            log_.emit("sandbox_stopped", self.clock.now())
            log_.close()

    async def _housekeeping(self) -> None:
        """Every ``poll_interval``: scan ``Send/``, take inbox requests, apply retention."""
        while True:
            try:
                await self._round()
            except Exception as error:  # noqa: BLE001 - keep the provider running
                self._on_error("housekeeping", error)
            await asyncio.sleep(self.config.poll_interval)

    async def _round(self) -> None:
        """One housekeeping round (on the loop); the file work runs on the worker."""
        self._intake.scan()
        self._store.save_clock(self.clock.now())
        busy = self._open_files.inodes()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._chores, self._engine, busy)

    def _chores(self, engine: Engine, busy: frozenset[int]) -> None:
        for path, request in read_requests(self.layout.inbox):
            request_id = str(request.get("id"))
            if request_id in engine.taken:  # taken before a kill, its file not yet removed
                path.unlink(missing_ok=True)
                continue
            kind = request.get("type")
            if kind == "reply":
                engine.inject_reply(
                    str(request.get("msisdn", "")),
                    str(request.get("text", "")),
                    str(request.get("id")),
                )
            elif kind == "advance":
                seconds = float(request.get("seconds", 0))
                self.clock.advance(timedelta(seconds=max(0.0, seconds)))
                self._events.emit(
                    "clock_advanced", self.clock.now(), seconds=seconds, request=request.get("id")
                )
            engine.taken[request_id] = None
            path.unlink(missing_ok=True)
            engine.commit()
        engine.sweep(self.clock.now(), busy)
