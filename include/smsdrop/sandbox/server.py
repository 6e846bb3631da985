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
* **Provider's files**: ``.lock`` files in ``Send/`` cannot be opened for writing, renamed or
  removed (the provider is processing them).
* **Hooks for the intake**: write handles are tracked by file identity, and a rename or the
  last close pokes the intake, so a ``.csv`` is locked at once — never while still open.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.sftp import (
    ACE4_APPEND_DATA,
    ACE4_WRITE_DATA,
    FXF_APPEND,
    FXF_WRITE,
    SFTPLimits,
    SFTPServerHandler,
)
from asyncssh.stream import SSHReader, SSHServerStreamSession, SSHWriter

from smsdrop.sandbox.clock import SimClock
from smsdrop.sandbox.config import SandboxConfig
from smsdrop.sandbox.events import EventLog
from smsdrop.sandbox.intake import Intake, OpenFiles
from smsdrop.sandbox.layout import PRIVATE_DIR, Layout

__all__ = ["SandboxSFTPServer", "SandboxSSHServer", "load_authorized_keys", "peer_allowed"]

log = logging.getLogger("smsdrop.sandbox")

_PRIVATE = PRIVATE_DIR.encode()


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


class SandboxSSHServer(asyncssh.SSHServer):
    """One connection: allow-list, authentication, and SFTP-only sessions."""

    def __init__(self, context: Context) -> None:
        self.ctx = context
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "?"
        self._method = ""
        self._fingerprint: str | None = None
        self._refused = False

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

    def validate_password(self, username: str, password: str) -> bool:
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

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        fingerprint = key.get_fingerprint()
        ok = username == self.ctx.config.user and key.public_data in self.ctx.key_data
        if ok:
            self._method, self._fingerprint = "publickey", fingerprint
        else:
            self._auth_failed(username, "publickey", fingerprint)
        return ok

    def _auth_failed(self, username: str, method: str, fingerprint: str | None = None) -> None:
        self.ctx.events.emit(
            "auth_failed",
            self.ctx.clock.now(),
            peer=self._peer,
            user=username,
            method=method,
            key=fingerprint,
        )
        log.warning("%s authentication of %r from %s refused", method, username, self._peer)

    def auth_completed(self) -> None:
        self.ctx.events.emit(
            "auth_accepted",
            self.ctx.clock.now(),
            peer=self._peer,
            user=self.ctx.config.user,
            method=self._method,
            key=self._fingerprint,
        )
        log.info("%s logged in from %s (%s)", self.ctx.config.user, self._peer, self._method)

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
        self._writers: dict[int, tuple[int, int]] = {}

    def map_path(self, path: bytes) -> bytes:
        local = super().map_path(path)
        relative = local[len(self._chroot or b"") :].lstrip(b"/")
        if relative == _PRIVATE or relative.startswith(_PRIVATE + b"/"):
            raise asyncssh.SFTPPermissionDenied("Permission denied")
        return local

    async def scandir(self, path: bytes):  # type: ignore[override]
        local = self.map_path(path)
        hide = local.rstrip(b"/") == (self._chroot or b"").rstrip(b"/")
        async for name in super().scandir(path):
            if not (hide and name.filename == _PRIVATE):
                yield name

    def _guarded(self, path: bytes) -> bool:
        """A provider-owned file: a ``.lock`` directly in ``Send/``."""
        local = self.map_path(path)
        return os.path.dirname(local) == self._send and local.endswith(b".lock")

    def _deny_if_guarded(self, *paths: bytes) -> None:
        if any(self._guarded(p) for p in paths):
            raise asyncssh.SFTPPermissionDenied("The provider is processing this file")

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        writing = bool(pflags & (FXF_WRITE | FXF_APPEND))
        if writing:
            self._deny_if_guarded(path)
        file_obj = super().open(path, pflags, attrs)
        if writing:
            self._track(file_obj)
        return file_obj

    def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> object:
        writing = bool(desired_access & (ACE4_WRITE_DATA | ACE4_APPEND_DATA))
        if writing:
            self._deny_if_guarded(path)
        file_obj = super().open56(path, desired_access, flags, attrs)
        if writing:
            self._track(file_obj)
        return file_obj

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

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._deny_if_guarded(oldpath, newpath)
        super().rename(oldpath, newpath)
        self.ctx.intake.poke()

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._deny_if_guarded(oldpath, newpath)
        super().posix_rename(oldpath, newpath)
        self.ctx.intake.poke()

    def remove(self, path: bytes) -> None:
        self._deny_if_guarded(path)
        super().remove(path)

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("Links are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("Links are not allowed")
