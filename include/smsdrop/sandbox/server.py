"""The SFTP server: asyncssh, one account chrooted to the sandbox root, SFTP only.

What it adds to asyncssh's stock ``SFTPServer``, and why:

* **IP allow-list**: a connection from an address not listed is closed before the SSH
  handshake and logged (``connection_refused``), like the provider's firewall.
* **Authentication** by public key (ed25519, RSA, …, from an ``authorized_keys`` file)
  and optionally by password, for one login; every failure is logged with the key's
  fingerprint (never the key or the password).
* **Chroot** to the root, minus ``.sandbox/`` (host key, event log), which is refused.
  Links cannot be created (a link is the classic way out of a chroot).
* **Write length cap**: asyncssh advertises a 4 MiB write length in its
  ``limits@openssh.com`` reply; clients that follow it (asyncssh) then crawl against
  flow control. The handler here answers with ``max_write_len`` (261120, OpenSSH's own).
  asyncssh has no option for it, so the handler class is subclassed (tested, pinned version).
* **Only ``Send/`` is writable**: files are created, written, renamed and have their times
  set there only; no directory is created or removed anywhere (the layout is the provider's).
* **Provider's files** (``.lock``, ``.done``, ``.reject`` in ``Send/``; everything in
  ``Report/``) cannot be opened for writing, created, truncated or renamed; ``.lock`` files
  cannot be removed either (the provider is processing them). ``.done``, ``.reject`` and
  reports may be read and removed (the spec asks clients to delete what they fetched).
* **Attributes**: ``setstat``/``fsetstat`` may change times only (what ``put -p`` keeps);
  permissions, owner, size (truncation) and extended attributes are refused, and a file is
  created ``0644`` whatever mode the client asks (no setuid, no executable bit).
* **Disk quota** per account (``quota``): the apparent size of ``Send/`` (so a sparse write
  far past the end counts) may not grow past it; the write that would is refused with
  "quota exceeded" and nothing of it is written.
* **Failed logins**: a connection is cut after ``max_auth_failures`` refused attempts, and
  every attempt from an address with recent failures waits its turn, longer after each
  failure (:class:`AuthThrottle`): guessing costs time per address, not per connection.
* **Log lines** quote client-chosen strings (file names, logins) with ``repr``: a name with a
  newline cannot forge a line in the sandbox's log.
* **Hooks for the intake**: write handles are tracked by file identity, and a rename or the
  last close pokes the intake, so a ``.csv`` is locked at once — never while still open.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.sftp import (
    ACE4_APPEND_DATA,
    ACE4_WRITE_DATA,
    FXF_ACCESS_DISPOSITION,
    FXF_APPEND,
    FXF_CREAT,
    FXF_OPEN_EXISTING,
    FXF_TRUNC,
    FXF_WRITE,
    SFTPLimits,
    SFTPServerHandler,
)
from asyncssh.stream import SSHReader, SSHServerStreamSession, SSHWriter

from smsdrop.dropbox import FINAL, RemoteState
from smsdrop.sandbox.clock import SimClock
from smsdrop.sandbox.config import SandboxConfig
from smsdrop.sandbox.events import EventLog
from smsdrop.sandbox.intake import Intake, OpenFiles
from smsdrop.sandbox.layout import PRIVATE_DIR, Layout

__all__ = [
    "AuthThrottle",
    "Quota",
    "SandboxSFTPServer",
    "SandboxSSHServer",
    "load_authorized_keys",
    "peer_allowed",
]

log = logging.getLogger("smsdrop.sandbox")

_PRIVATE = PRIVATE_DIR.encode()
#: Extensions of the provider's own files in ``Send/``: the lock and the verdicts.
_PROVIDER_EXTS = tuple(f".{s.value}".encode() for s in (RemoteState.LOCK, *sorted(FINAL)))
#: Attributes a client may set: times only (``put -p``, ``touch``-like clients); ``type``
#: is always filled in by asyncssh's parser, it changes nothing.
_TIME_FIELDS = frozenset({"atime", "atime_ns", "mtime", "mtime_ns", "type"})
#: Mode of every file a client creates (its requested mode is ignored).
FILE_MODE = 0o644


def peer_allowed(
    address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    """Whether a peer address is in the allow-list (IPv4-mapped IPv6 counts as IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks if ip.version == network.version)


def load_authorized_keys(path: Path) -> list[asyncssh.SSHKey]:
    """Public keys of an OpenSSH ``authorized_keys`` file (options are ignored)."""
    return list(asyncssh.read_public_key_list(str(path)))


class AuthThrottle:
    """Per peer address: after a failed login, that address's next attempts wait their turn.

    The wait doubles with each failure (``base``, 2×``base``, … up to ``cap`` seconds) and
    attempts from one address are spaced by it even over parallel connections, so opening
    more connections does not guess faster. An address is forgiven after a success or
    ``forget_after`` quiet seconds. Real (monotonic) time: it protects a real account.
    """

    def __init__(self, base: float, cap: float, forget_after: float = 600.0) -> None:
        self.base, self.cap, self.forget_after = base, cap, forget_after
        self._failures: dict[str, tuple[int, float]] = {}
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def penalty(self, address: str) -> float:
        """Seconds between two attempts from ``address`` now (0 without recent failures)."""
        count, last = self._failures.get(address, (0, 0.0))
        if not count or time.monotonic() - last > self.forget_after:
            return 0.0
        return min(self.cap, self.base * 2 ** (count - 1))

    def reserve(self, address: str) -> float:
        """Seconds this attempt must wait before it is answered (its turn is taken)."""
        penalty = self.penalty(address)
        if penalty <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(address, now))
            self._next[address] = start + penalty
            return start - now

    def failed(self, address: str) -> None:
        with self._lock:
            count, last = self._failures.get(address, (0, 0.0))
            now = time.monotonic()
            if now - last > self.forget_after:
                count = 0
            self._failures[address] = (count + 1, now)
            self._next[address] = max(self._next.get(address, now), now + self.penalty(address))

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
            self._next.pop(address, None)


class Quota:
    """Bytes the account stores in ``Send/`` (apparent sizes), against ``limit``.

    Measured from the folder whenever a file is opened for writing (deletions, retention
    and the provider's renames are then seen) and counted up by every write that grows a
    file; writes run on the event loop, one at a time, so the count needs no lock.
    """

    def __init__(self, folder: Path, limit: int | None) -> None:
        self.folder, self.limit = folder, limit
        self.used = 0

    def measure(self) -> int:
        total = 0
        with os.scandir(self.folder) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
        self.used = total
        return total

    def grow(self, growth: int) -> None:
        """Count ``growth`` more bytes, or raise (nothing counted) past the limit."""
        if growth <= 0:
            return
        if self.limit is not None and self.used + growth > self.limit:
            raise asyncssh.SFTPQuotaExceeded(
                f"Disk quota exceeded: the account may store {self.limit} bytes ({self.used} used)"
            )
        self.used += growth


class Context:
    """What every connection and session shares: config, clock, log, intake."""

    def __init__(
        self,
        config: SandboxConfig,
        layout: Layout,
        clock: SimClock,
        events: EventLog,
        intake: Intake,
        open_files: OpenFiles,
        keys: list[asyncssh.SSHKey],
        password: str | None,
    ) -> None:
        self.config, self.layout, self.clock, self.events = config, layout, clock, events
        self.intake, self.open_files = intake, open_files
        self.key_data = {key.public_data for key in keys}
        self.password = password
        self.networks = [ipaddress.ip_network(a, strict=False) for a in config.allow_ips]
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.throttle = AuthThrottle(config.auth_failure_delay, config.auth_failure_delay_max)
        self.quota = Quota(layout.send, config.quota)
        #: ACK report names a client looked for (stat), with the real time it last did:
        #: what :meth:`Sandbox.fast_forward` waits for before it moves the clock.
        self.acks_awaited: dict[str, float] = {}


class SandboxSSHServer(asyncssh.SSHServer):
    """One connection: allow-list, authentication, and SFTP-only sessions."""

    def __init__(self, context: Context) -> None:
        self.ctx = context
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "?"
        self._method = ""
        self._fingerprint: str | None = None
        self._refused = False
        self._failures = 0

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        peer = conn.get_extra_info("peername") or ("?", 0)
        self._conn, self._peer = conn, str(peer[0])
        now = self.ctx.clock.now()
        if not peer_allowed(self._peer, self.ctx.networks):
            self._refused = True
            self.ctx.events.emit("connection_refused", now, peer=self._peer, reason="ip")
            log.warning("connection from %s refused: not in the allow-list", self._peer)
            conn.abort()
            return
        self.ctx.connections.add(conn)
        self.ctx.events.emit("connection_accepted", now, peer=self._peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused or self._conn is None:
            return
        self.ctx.connections.discard(self._conn)
        self.ctx.events.emit(
            "connection_closed",
            self.ctx.clock.now(),
            peer=self._peer,
            error=type(exc).__name__ if exc else None,
        )

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return self.ctx.password is not None

    async def validate_password(self, username: str, password: str) -> bool:
        await self._wait_turn()
        expected = self.ctx.password or ""
        ok = (
            self.ctx.password is not None
            and username == self.ctx.config.user
            and hmac.compare_digest(password.encode(), expected.encode())
        )
        if ok:
            self._method = "password"
        else:
            self._auth_failed(username, "password")
        return ok

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        await self._wait_turn()
        fingerprint = key.get_fingerprint()
        ok = username == self.ctx.config.user and key.public_data in self.ctx.key_data
        if ok:
            self._method, self._fingerprint = "publickey", fingerprint
        else:
            self._auth_failed(username, "publickey", fingerprint)
        return ok

    async def _wait_turn(self) -> None:
        """An address with recent failures waits before any attempt is answered."""
        wait = self.ctx.throttle.reserve(self._peer)
        if wait > 0:
            await asyncio.sleep(wait)

    def _auth_failed(self, username: str, method: str, fingerprint: str | None = None) -> None:
        self._failures += 1
        self.ctx.throttle.failed(self._peer)
        self.ctx.events.emit(
            "auth_failed",
            self.ctx.clock.now(),
            peer=self._peer,
            user=username,
            method=method,
            key=fingerprint,
            failures=self._failures,
        )
        log.warning("%s authentication of %r from %s refused", method, username, self._peer)
        limit = self.ctx.config.max_auth_failures
        if self._failures >= limit and self._conn is not None:
            self.ctx.events.emit(
                "auth_limit", self.ctx.clock.now(), peer=self._peer, failures=self._failures
            )
            log.warning(
                "connection from %s cut after %d failed login(s)", self._peer, self._failures
            )
            self._conn.disconnect(
                asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE,
                f"Too many authentication failures ({self._failures})",
            )

    def auth_completed(self) -> None:
        self.ctx.throttle.succeeded(self._peer)
        self.ctx.events.emit(
            "auth_accepted",
            self.ctx.clock.now(),
            peer=self._peer,
            user=self.ctx.config.user,
            method=self._method,
            key=self._fingerprint,
        )
        log.info("%r logged in from %s (%s)", self.ctx.config.user, self._peer, self._method)

    def session_requested(self) -> SSHServerStreamSession:
        return _SftpOnlySession(lambda chan: SandboxSFTPServer(chan, self.ctx))


async def _process_limits(self: SFTPServerHandler, packet: asyncssh.packet.SSHPacket) -> SFTPLimits:
    """``limits@openssh.com`` with the write length capped (see the module docstring)."""
    limits = await SFTPServerHandler._process_limits(self, packet)
    server = self._server
    cap = server.ctx.config.max_write_len if isinstance(server, SandboxSFTPServer) else 261_120
    return SFTPLimits(
        limits.max_packet_len,
        limits.max_read_len,
        min(limits.max_write_len, cap),
        limits.max_open_handles,
    )


class _CappedHandler(SFTPServerHandler):
    """asyncssh's SFTP request handler with our ``limits@openssh.com`` answer."""

    _packet_handlers = {  # noqa: RUF012 - mirrors the parent's class attribute
        **SFTPServerHandler._packet_handlers,
        b"limits@openssh.com": _process_limits,
    }


class _SftpOnlySession(SSHServerStreamSession):
    """A session that only runs the SFTP subsystem (no shell, exec or scp), with our handler."""

    def __init__(self, sftp_factory: Callable[[Any], asyncssh.SFTPServer]) -> None:
        super().__init__(None, sftp_factory, 3, False)

    def session_started(self) -> None:
        chan = self._chan
        assert chan is not None and self._conn is not None
        if chan.get_subsystem() != "sftp":  # pragma: no cover - refused before this point
            chan.close()
            return
        stdin = SSHReader[bytes](self, chan)
        stdout = SSHWriter[bytes](self, chan)
        server = self._init_sftp_server()
        handler = _CappedHandler(server, stdin, stdout, self._sftp_version)
        self._conn.create_task(handler.run(), stdin.logger)


class SandboxSFTPServer(asyncssh.SFTPServer):
    """The account's view: the root, minus the private directory; provider's files guarded."""

    def __init__(self, chan: asyncssh.SSHServerChannel, ctx: Context) -> None:
        super().__init__(chan, chroot=str(ctx.layout.root).encode())
        self.ctx = ctx
        self._send = os.fsencode(ctx.layout.send.resolve())
        self._report = os.fsencode(ctx.layout.report.resolve())
        scratch = ctx.config.scratch
        self._scratch = os.fsencode((ctx.layout.root / scratch).resolve()) if scratch else None
        self._writers: dict[int, tuple[int, int]] = {}

    def map_path(self, path: bytes) -> bytes:
        local = super().map_path(path)
        relative = local[len(self._chroot or b"") :].lstrip(b"/")
        if relative == _PRIVATE or relative.startswith(_PRIVATE + b"/"):
            raise asyncssh.SFTPPermissionDenied("Permission denied")
        return local

    def _note_ack_wait(self, path: bytes) -> None:
        local = self.map_path(path)
        name = os.path.basename(local)
        if os.path.dirname(local) == self._report and name.startswith(b"ACK-"):
            self.ctx.acks_awaited[os.fsdecode(name)] = time.monotonic()

    def stat(self, path: bytes):  # type: ignore[override]
        self._note_ack_wait(path)
        return super().stat(path)

    def lstat(self, path: bytes):  # type: ignore[override]
        self._note_ack_wait(path)
        return super().lstat(path)

    async def scandir(self, path: bytes):  # type: ignore[override]
        local = self.map_path(path)
        hide = local.rstrip(b"/") == (self._chroot or b"").rstrip(b"/")
        async for name in super().scandir(path):
            if not (hide and name.filename == _PRIVATE):
                yield name

    # --- what the account may touch ----------------------------------------------------

    def _in_send(self, local: bytes) -> bool:
        return os.path.dirname(local) == self._send

    def _in_scratch(self, local: bytes) -> bool:
        return self._scratch is not None and os.path.dirname(local) == self._scratch

    def _provider_owned(self, local: bytes) -> bool:
        """``.lock``/``.done``/``.reject`` in ``Send/``, or anything in ``Report/``."""
        if self._in_send(local):
            return local.endswith(_PROVIDER_EXTS)
        return local == self._report or local.startswith(self._report + b"/")

    def _writable(self, path: bytes) -> bytes:
        """The local path of a file the account may create, write or rename, or refuse."""
        local = self.map_path(path)
        if self._in_scratch(local):
            return local
        if not self._in_send(local):
            raise asyncssh.SFTPPermissionDenied("Only Send/ is writable")
        if self._provider_owned(local):
            raise asyncssh.SFTPPermissionDenied("This file belongs to the provider")
        return local

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        writing = bool(pflags & (FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC))
        if writing:
            self._writable(path)
            self.ctx.quota.measure()
            attrs = asyncssh.SFTPAttrs(permissions=FILE_MODE)
        file_obj = super().open(path, pflags, attrs)
        if writing:
            self._track(file_obj)
        return file_obj

    def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> object:
        writing = bool(desired_access & (ACE4_WRITE_DATA | ACE4_APPEND_DATA)) or (
            flags & FXF_ACCESS_DISPOSITION != FXF_OPEN_EXISTING
        )
        if writing:
            self._writable(path)
            self.ctx.quota.measure()
            attrs = asyncssh.SFTPAttrs(permissions=FILE_MODE)
        file_obj = super().open56(path, desired_access, flags, attrs)
        if writing:
            self._track(file_obj)
        return file_obj

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        """Writes count against the quota: only growth past the current end does."""
        handle: Any = file_obj
        size = os.fstat(handle.fileno()).st_size
        end = size + len(data) if "a" in getattr(handle, "mode", "") else offset + len(data)
        self.ctx.quota.grow(end - size)
        return super().write(file_obj, offset, data)  # type: ignore[return-value]

    def _track(self, file_obj: Any) -> None:
        info = os.fstat(file_obj.fileno())
        file_id = (info.st_dev, info.st_ino)
        self._writers[id(file_obj)] = file_id
        self.ctx.open_files.opened(file_id)

    def close(self, file_obj: object) -> None:
        super().close(file_obj)
        file_id = self._writers.pop(id(file_obj), None)
        if file_id is not None and self.ctx.open_files.closed(file_id):
            self.ctx.intake.poke()

    def exit(self) -> None:
        # asyncssh closes open files through close() at session end, which untracks them.
        for file_id in self._writers.values():  # pragma: no cover - defensive
            self.ctx.open_files.closed(file_id)
        self._writers.clear()

    # --- attributes: times only ------------------------------------------------------------

    @staticmethod
    def _times_only(attrs: asyncssh.SFTPAttrs) -> None:
        changed = {
            name
            for name, value in vars(attrs).items()
            if value not in (None, [], ()) and name not in _TIME_FIELDS
        }
        if changed:
            raise asyncssh.SFTPPermissionDenied(
                f"Only times may be changed (refused: {', '.join(sorted(changed))})"
            )

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._times_only(attrs)
        self._writable(path)
        super().setstat(path, attrs)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._times_only(attrs)
        self._writable(path)
        super().lsetstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        self._times_only(attrs)
        if id(file_obj) not in self._writers:  # a read handle: maybe a provider's file
            raise asyncssh.SFTPPermissionDenied("Times can be set on files opened for writing")
        super().fsetstat(file_obj, attrs)

    # --- names -------------------------------------------------------------------------------

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._writable(oldpath), self._writable(newpath)
        super().rename(oldpath, newpath)
        self.ctx.intake.poke()

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._writable(oldpath), self._writable(newpath)
        super().posix_rename(oldpath, newpath)
        self.ctx.intake.poke()

    def remove(self, path: bytes) -> None:
        local = self.map_path(path)
        in_report = os.path.dirname(local) == self._report
        if not (self._in_send(local) or in_report or self._in_scratch(local)):
            raise asyncssh.SFTPPermissionDenied("Only files in Send/ and Report/ can be removed")
        if self._in_send(local) and local.endswith(b".lock"):
            raise asyncssh.SFTPPermissionDenied("The provider is processing this file")
        super().remove(path)

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied("Directories cannot be created")

    def rmdir(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("Directories cannot be removed")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("Links are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("Links are not allowed")
