"""An SFTP session we can trust, and fast transfers over it: :class:`PinnedSFTPHook`.

Built on the provider package's :class:`~airflow.providers.sftp.hooks.sftp.SFTPHook`
(paramiko): connection parsing, key loading and the SSH handshake stay theirs. What this
base of :class:`~smsdrop.airflow.hooks.MTargetHook` adds, and why:

* **Host key pinned, always.** The connection's ``host_key`` extra must hold the server's
  public key; ``no_host_key_check`` and ``allow_host_key_change`` are refused. A missing pin,
  an unknown key or a changed key fails with the host and both fingerprints in the message
  (the provider takes real money for every file it receives: talking to an impostor is
  not an option).
* **No retry storm.** Paramiko's login errors are never retried (the provider could lock the
  account); only connection-level errors are, ``connect_attempts`` times, a login the
  server never answered included: the connection ended during it, or no answer came within
  ``auth_timeout`` (paramiko calls both an authentication failure: :func:`unanswered_login`).
  Refusals raise
  :class:`~smsdrop.airflow.exceptions.MTargetFailure`, which fails the task without retries.
  ``look_for_keys`` is off unless asked: only the connection's own credentials are offered.
* **Managed connections only.** ``SFTPHook.get_conn()`` can hand back a client closed by an
  earlier helper call (FIELD-NOTES); every method runs inside :meth:`get_managed_conn`,
  which opens one connection for nested calls and closes it after.
* **Fast transfers** (FIELD-NOTES recipe, docs/PERFORMANCE.md): AES-GCM is
  negotiated when the server offers it (paramiko alone picks aes128-ctr), requests are
  261120 bytes (OpenSSH's own write length; paramiko's default is 32 KiB) and pipelined,
  reads are prefetched. Uploads build their WRITE requests in place and send them
  through the channel (:class:`_WriteStream`), in two SFTP sessions writing a half each
  against OpenSSH servers (:meth:`PinnedSFTPHook._second_stream`). Compression is off:
  CSV over a fast link is CPU-bound and zlib halves the speed.

Connection extras read here (besides the SFTP provider's ``host_key``, ``key_file``,
``private_key``, ``private_key_passphrase``, ``conn_timeout``, ``ciphers``):
``connect_attempts`` (3), ``op_timeout`` (seconds an SFTP request may take, 120),
``request_size`` (261120), ``upload_streams`` (2; 1: one SFTP session per upload),
``compress`` (false), ``look_for_keys`` (false),
``allow_agent`` (false). The algorithm policy is :mod:`smsdrop.airflow.ssh_rules`'.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, ClassVar, Final

import paramiko
from airflow.providers.sftp.hooks.sftp import SFTPHook
from paramiko.common import MSG_CHANNEL_DATA
from paramiko.sftp import CMD_STATUS, CMD_WRITE

from smsdrop.airflow.exceptions import (
    MTargetAuthError,
    MTargetHostKeyError,
    MTargetTransferError,
)
from smsdrop.airflow.ssh_rules import (
    SLOW_CIPHERS,
    WEAK_CIPHERS,
    WEAK_KEX,
    WEAK_MACS,
    check_extras,
    numeric_extra,
    truthy,
)

__all__ = [
    "PREFETCH_REQUESTS",
    "REQUESTS_PER_SEND",
    "REQUEST_SIZE",
    "WRITE_BLOCK",
    "PinnedSFTPHook",
]

#: OpenSSH's own SFTP write length (SFTP_MAX_MSG_LENGTH - 1024): servers built on OpenSSH
#: drop the session above ~256 KiB per request, and paramiko's 32 KiB default is what makes
#: ``SFTPHook.store_file`` run at 0.42x OpenSSH's ``sftp`` (FIELD-NOTES).
REQUEST_SIZE: Final = 261_120
#: Local write size while downloading (reads of the prefetched requests).
WRITE_BLOCK: Final = 4 * 1024 * 1024
#: Upload requests read and sent at once (8 x 255 KiB: about sshd's 2 MiB channel window).
REQUESTS_PER_SEND: Final = 8
#: SSH server software (the banner after ``SSH-2.0-``) whose SFTP server writes each request
#: at its offset, so two sessions may write halves of one file (``_second_stream``).
OFFSET_WRITE_SERVERS: Final = ("OpenSSH_",)
#: Files from this size go up in two sessions (smaller ones: the second session's setup,
#: ~2 round trips and a process on the server, would cost more than it saves).
TWO_STREAMS_FROM: Final = 16 * 1024 * 1024
#: The numeric extras: (default, lowest, highest). Above REQUEST_SIZE, OpenSSH drops the
#: session; more than two upload streams measured no faster (docs/PERFORMANCE.md).
NUMERIC_EXTRAS: Final[dict[str, tuple[float, float, float]]] = {
    "connect_attempts": (3, 1, 20),
    "op_timeout": (120, 1, 86_400),
    "request_size": (REQUEST_SIZE, 512, REQUEST_SIZE),
    "upload_streams": (2, 1, 2),
}
#: Read requests in flight while downloading (64 x 255 KiB: ~16 MB buffered at most).
PREFETCH_REQUESTS: Final = 64


def _fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


#: SSH_MSG_CHANNEL_DATA's header: message number, recipient channel, data length.
_CHANNEL_DATA: Final = struct.Struct(">BII")


class _Packet:
    """A payload already in wire form, for the transport (it only calls ``asbytes``)."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def asbytes(self) -> bytes:
        return self.payload


class _WriteStream:
    """Pipelined SFTP WRITE requests built in place and sent straight through the channel.

    Why not ``SFTPFile.write``: paramiko copies every request four times on the way
    (slice, ``Message``, ``asbytes``, header concatenation) and then re-slices the rest of
    the request after each 32 KiB channel packet (``out = out[n:]``: ~4 more copies of a
    255 KiB request). Here the file is read (``preadv``, at its offset: two streams can
    share the file) into one buffer that already holds the requests' headers, and the
    buffer goes to the channel as a memoryview (slicing it copies nothing), one bytes
    object per channel packet (:meth:`_send`).
    Answers are read as they arrive, without blocking, so an error surfaces while the
    upload runs; the rest are awaited at the end.

    Per upload, not paramiko-wide: it uses the session's request counter and lock (so the
    session's later requests get fresh ids) and reads only its own answers; nothing else
    uses the session meanwhile. It relies on paramiko internals (``_lock``,
    ``request_number``, ``_read_packet``, ``_convert_status``; the channel's ``lock``,
    ``_wait_for_send_window``, the transport's ``_send_user_message``): paramiko is pinned
    (constraints.txt) and tests/airflow/test_hook.py checks the bytes on both servers.
    """

    def __init__(self, sftp: paramiko.SFTPClient, handle: bytes, request_size: int) -> None:
        self.sftp = sftp
        self.request_size = request_size
        # uint32 length, byte type, uint32 id, string handle, uint64 offset, uint32 data length
        self.prefix = struct.pack(">I", len(handle)) + handle
        self.header = 4 + 1 + 4 + len(self.prefix) + 8 + 4
        self.pending: set[int] = set()
        self.sent = 0  # bytes handed to the channel

    def copy(self, fd: int, start: int, stop: int) -> None:
        """Send bytes ``start:stop`` of the local file ``fd`` to the same offsets, then wait
        for every answer. A local file shorter than ``stop`` ends the stream early (the size
        check after the upload sees it)."""
        header, size = self.header, self.request_size
        buffer = bytearray((header + size) * REQUESTS_PER_SEND)
        view = memoryview(buffer)
        channel = self.sftp.sock
        offset = start
        while offset < stop:
            end = 0
            for _ in range(REQUESTS_PER_SEND):
                body = end + header
                read = os.preadv(fd, [view[body : body + min(size, stop - offset)]], offset)
                if not read:
                    stop = offset
                    break
                self._header_into(buffer, end, offset, read)
                offset += read
                end = body + read
                if offset >= stop:
                    break
            if end:
                self._send(view[:end])
                self.sent = offset - start
            while self.pending and channel.recv_ready():
                self._answer()
        while self.pending:
            self._answer()

    def _send(self, data: memoryview) -> None:
        """``Channel.sendall`` minus its per-packet ``Message``: each 32 KiB channel packet
        is one bytes object (header + slice) handed to the transport, as ``Channel.send``
        does after its window wait (same lock, window and key-exchange rules); ~20 % less
        CPU per upload. A closed channel raises (``sendall`` would loop on its 0)."""
        channel = self.sftp.sock
        transport = channel.transport
        while data:
            with channel.lock:
                if channel.closed:
                    raise OSError("Socket is closed")
                size = channel._wait_for_send_window(len(data))
            if not size:
                raise EOFError("the SSH channel was closed during the upload")
            header = _CHANNEL_DATA.pack(MSG_CHANNEL_DATA, channel.remote_chanid, size)
            transport._send_user_message(_Packet(header + data[:size]))
            data = data[size:]

    def _header_into(self, buffer: bytearray, at: int, offset: int, length: int) -> None:
        with self.sftp._lock:
            number = self.sftp.request_number
            self.sftp.request_number += 1
        struct.pack_into(">IBI", buffer, at, self.header - 4 + length, CMD_WRITE, number)
        at += 9
        buffer[at : at + len(self.prefix)] = self.prefix
        struct.pack_into(">QI", buffer, at + len(self.prefix), offset, length)
        self.pending.add(number)

    def _answer(self) -> None:
        """Read one answer: it must be the OK status of one of our requests."""
        kind, data = self.sftp._read_packet()
        message = paramiko.Message(data)
        number = message.get_int()
        if kind != CMD_STATUS or number not in self.pending:
            raise paramiko.SSHException(f"unexpected SFTP answer (type {kind}, id {number})")
        self.pending.discard(number)
        self.sftp._convert_status(message)  # raises OSError or EOFError unless OK


def _copy_in_two(fd: int, first: _WriteStream, second: _WriteStream, size: int) -> None:
    """The first half of the file through ``first`` (this thread), the rest through
    ``second`` (a thread of its own): each session has its own channel window."""
    middle = size // 2 // first.request_size * first.request_size
    failed: list[BaseException] = []

    def other_half() -> None:
        try:
            second.copy(fd, middle, size)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            failed.append(error)

    worker = threading.Thread(target=other_half, name="sftp-upload-second-half", daemon=True)
    worker.start()
    try:
        first.copy(fd, 0, middle)
    except BaseException:
        second.sftp.close()  # the worker's next send or read fails: it stops
        raise
    finally:
        worker.join()
    if failed:
        raise failed[0]


class PinnedSFTPHook(SFTPHook):
    """
    An ``SFTPHook`` under this module's rules: pinned host key, refusals explained and never
    retried, managed connections, AES-GCM and large pipelined requests.

    :param mtarget_conn_id: the connection; its extras are read once, into :attr:`extras`
    """

    #: Servers found without AES-GCM in this process: not asked again (one handshake saved).
    _without_gcm: ClassVar[set[tuple[str, int | None]]] = set()

    def __init__(self, mtarget_conn_id: str, **kwargs: Any) -> None:
        self.mtarget_conn_id = mtarget_conn_id
        # Checked before the provider's hook parses the extras: it has its own rules on
        # some of these combinations, with messages that do not say what to do.
        self.extras: dict[str, Any] = self.get_connection(mtarget_conn_id).extra_dejson
        extras = self.extras
        check_extras(mtarget_conn_id, extras)
        super().__init__(ssh_conn_id=mtarget_conn_id, conn_retry_attempts=1, **kwargs)

        def number(name: str) -> float:
            return numeric_extra(mtarget_conn_id, extras, name, NUMERIC_EXTRAS[name])

        self.connect_attempts = int(number("connect_attempts"))
        self.op_timeout = number("op_timeout")
        self.request_size = int(number("request_size"))
        self.upload_streams = int(number("upload_streams"))
        self.compress = truthy(extras.get("compress", False))
        self.look_for_keys = truthy(extras.get("look_for_keys", False))
        self.allow_agent = truthy(extras.get("allow_agent", False))
        if self.conn_timeout is None:
            self.conn_timeout = 30
        self._check_file_supported: bool | None = None
        # AES-GCM only, unless the connection chooses ciphers itself (see _algorithms).
        self._user_disabled = self.disabled_algorithms
        self._gcm_only = (
            not self.ciphers
            and "ciphers" not in (self.disabled_algorithms or {})
            and (self.remote_host, self.port) not in PinnedSFTPHook._without_gcm
        )

    # --- connections ---------------------------------------------------------------------

    @contextmanager
    def get_managed_conn(self) -> Iterator[paramiko.SFTPClient]:  # type: ignore[override]
        """One SFTP session for this block and every hook call nested in it, closed after.

        Same contract as :meth:`SFTPHook.get_managed_conn`, with our connect step:
        pinned host key, errors that say what was refused, transient errors retried.
        """
        if self._sftp_conn is None:
            client = self._connect()
            try:
                sftp = client.open_sftp()
            except Exception:
                client.close()
                raise
            channel = sftp.get_channel()
            if channel is not None and self.op_timeout > 0:
                channel.settimeout(self.op_timeout)
            self._ssh_conn, self._sftp_conn = client, sftp
            self._check_file_supported = None
        self._conn_count += 1
        try:
            yield self._sftp_conn
        finally:
            self._conn_count -= 1
            if self._conn_count == 0 and self._ssh_conn is not None:
                with suppress(Exception):
                    if self._sftp_conn is not None:
                        self._sftp_conn.close()
                self._sftp_conn = None
                self._ssh_conn.close()
                self._ssh_conn = None
                self.client = None
                if hasattr(self, "host_proxy"):
                    del self.host_proxy

    def get_conn(self) -> paramiko.SFTPClient:  # type: ignore[override]
        """An SFTP client the caller closes (:meth:`close_conn`); prefer :meth:`get_managed_conn`.

        Kept for code written against ``SFTPHook.get_conn``, with this hook's connect step
        (pinned key, explained refusals, AES-GCM) instead of the provider's.
        """
        if self.conn is None:
            self.conn = self._connect().open_sftp()
        return self.conn

    def _where(self) -> str:
        return f"{self.username}@{self.remote_host}:{self.port}"

    def _connect(self) -> paramiko.SSHClient:
        """``SSHHook.get_conn`` (key loading, handshake, auth) with refusals explained.

        Only errors before authentication that a new try may cure (refused or reset
        connection, timeout, banner not received) are retried here; a refused host key or
        login never is.
        """
        if self.host_key is None:
            offered = self._probe_host_key()
            seen = f"; the server presents {offered}" if offered else ""
            raise MTargetHostKeyError(
                f"connection {self.mtarget_conn_id!r}: no host key pinned for "
                f"{self.remote_host}:{self.port}{seen}. Check that fingerprint with the "
                "provider, then put the public key line in the connection's host_key extra."
            )
        delay = 1.0
        attempt = 0
        while attempt < self.connect_attempts:
            attempt += 1
            self.disabled_algorithms = self._algorithms()
            try:
                client = self._open_client()
            except paramiko.IncompatiblePeer as error:
                if not self._gcm_only or "cipher" not in str(error):
                    raise MTargetTransferError(
                        f"{self._where()}: {error}. CBC, 3DES and HMAC-MD5 are never used; "
                        "ask the provider for AES-GCM or AES-CTR with HMAC-SHA2."
                    ) from None
                # The server has no AES-GCM: take what paramiko would have chosen.
                self.log.info(
                    "%s offers no AES-GCM; using paramiko's other strong ciphers", self._where()
                )
                self._gcm_only = False
                PinnedSFTPHook._without_gcm.add((self.remote_host, self.port))
                attempt -= 1
                continue
            except paramiko.BadHostKeyException as error:
                raise MTargetHostKeyError(
                    f"host key of {self.remote_host}:{self.port} has CHANGED: the server "
                    f"presents {_fingerprint(error.key)}, connection {self.mtarget_conn_id!r} "
                    f"pins {_fingerprint(error.expected_key)}. Refusing to connect (possible "
                    "man-in-the-middle); if the provider really changed its key, check the "
                    "new fingerprint with them and update the host_key extra."
                ) from None
            except paramiko.BadAuthenticationType as error:
                raise MTargetAuthError(
                    f"{self._where()} refused {self._offered()}: the server accepts only "
                    f"{', '.join(error.allowed_types) or 'nothing'} for this login "
                    f"(connection {self.mtarget_conn_id!r}). Not retried."
                ) from None
            except paramiko.AuthenticationException:
                raise MTargetAuthError(
                    f"{self._where()} refused {self._offered()} (connection "
                    f"{self.mtarget_conn_id!r}): wrong {self._credential_word()} for this "
                    "login? Not retried, so the account is not locked by repeated failures."
                ) from None
            except paramiko.SSHException as error:
                if "known_hosts" in str(error):
                    offered = self._probe_host_key()
                    raise MTargetHostKeyError(
                        f"host key of {self.remote_host}:{self.port} is UNKNOWN: the server "
                        f"presents {offered or 'a key of another type'}, which is not the key "
                        f"pinned in connection {self.mtarget_conn_id!r}. Refusing to connect."
                    ) from None
                if attempt == self.connect_attempts:
                    raise MTargetTransferError(
                        f"cannot open an SSH session to {self._where()}: {error}"
                    ) from error
            except (OSError, EOFError) as error:
                if attempt == self.connect_attempts:
                    raise MTargetTransferError(
                        f"cannot reach {self._where()}: {type(error).__name__}: {error}"
                    ) from error
            else:
                self._verify_pinned(client)
                return client
            self.log.info(
                "Connecting to %s failed (attempt %d of %d); retrying in %.0f s",
                self._where(),
                attempt,
                self.connect_attempts,
                delay,
            )
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt raises

    def _open_client(self) -> paramiko.SSHClient:
        """The SSH handshake and login, with this hook's rules (``SSHHook.get_conn`` minus
        what they forbid: it reads ``~/.ssh/known_hosts`` and lets paramiko offer the
        ssh-agent's keys, with no option to stop it).

        Only the pinned key is a known host (:class:`paramiko.RejectPolicy` for the rest);
        only the connection's password, key or key file are offered, plus ``~/.ssh`` keys and
        agent keys when the extras ask for them.
        """
        assert self.host_key is not None
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        where = self.remote_host if self.port in (None, 22) else f"[{self.remote_host}]:{self.port}"
        client.get_host_keys().add(where, self.host_key.get_name(), self.host_key)
        kwargs: dict[str, Any] = {
            "hostname": self.remote_host,
            "port": self.port or 22,
            "username": self.username,
            "timeout": self.conn_timeout,
            "banner_timeout": self.banner_timeout,
            "auth_timeout": self.auth_timeout,
            "compress": self.compress,
            "sock": self.host_proxy,
            "look_for_keys": self.look_for_keys,
            "allow_agent": self.allow_agent,
            "disabled_algorithms": self.disabled_algorithms,
        }
        if self.password:
            kwargs["password"] = self.password.strip()
        if self.pkey:
            kwargs["pkey"] = self.pkey
        if self.key_file:
            kwargs["key_filename"] = self.key_file
        try:
            client.connect(**kwargs, transport_factory=LoginTransport)
        except paramiko.AuthenticationException as error:
            unanswered = unanswered_login(client)
            client.close()
            if unanswered:  # a connection failure like any other: retried
                raise ConnectionResetError(unanswered) from error
            raise
        except BaseException:
            client.close()
            raise
        if self.keepalive_interval:
            transport = client.get_transport()
            if transport is not None:
                transport.set_keepalive(self.keepalive_interval)
        self.client = client
        return client

    def _algorithms(self) -> dict[str, Any]:
        """``disabled_algorithms`` for paramiko: AES-GCM only while :attr:`_gcm_only`.

        Paramiko's client prefers aes128-ctr (+ HMAC), ~0.75x the throughput of AES-GCM,
        and the provider's hook offers no way to reorder ciphers before the handshake
        (its ``ciphers`` extra applies after it). Disabling the others makes the handshake
        pick AES-GCM; a server without it fails the handshake at once and is retried with
        paramiko's own list — minus the weak ciphers and MACs, which are always disabled.
        """
        base = {k: list(v) for k, v in (self._user_disabled or {}).items()}
        ciphers = set(base.get("ciphers", [])) | set(WEAK_CIPHERS)
        if self._gcm_only:
            ciphers |= set(SLOW_CIPHERS)
        base["ciphers"] = sorted(ciphers)
        base["macs"] = sorted(set(base.get("macs", [])) | set(WEAK_MACS))
        if WEAK_KEX:
            base["kex"] = sorted(set(base.get("kex", [])) | set(WEAK_KEX))
        return base

    def _verify_pinned(self, client: paramiko.SSHClient) -> None:
        """The key the session was made with must be the pinned one.

        Paramiko looks at ``~/.ssh/known_hosts`` before the pinned key: a worker whose
        known_hosts vouches for another key would otherwise connect anyway.
        """
        transport = client.get_transport()
        assert transport is not None and self.host_key is not None
        presented = transport.get_remote_server_key()
        if presented != self.host_key:
            client.close()
            raise MTargetHostKeyError(
                f"host key of {self.remote_host}:{self.port} is not the pinned one: the server "
                f"presents {_fingerprint(presented)}, connection {self.mtarget_conn_id!r} pins "
                f"{_fingerprint(self.host_key)}. Refusing to use the session."
            )

    def _probe_host_key(self) -> str | None:
        """The server's host key fingerprint, from a key exchange alone (no login)."""
        transport: paramiko.Transport | None = None
        try:
            sock = socket.create_connection(
                (self.remote_host, int(self.port or 22)), timeout=self.conn_timeout
            )
            transport = paramiko.Transport(sock)
            transport.start_client(timeout=self.conn_timeout)
            return _fingerprint(transport.get_remote_server_key())
        except Exception:  # noqa: BLE001 - only to enrich an error message
            return None
        finally:
            if transport is not None:
                transport.close()

    def _offered(self) -> str:
        """The credentials this connection offers, named without revealing them."""
        offered = []
        if self.pkey is not None:
            offered.append(f"private key {_fingerprint(self.pkey)} (extra private_key)")
        if self.key_file:
            offered.append(f"key file {self.key_file}")
        if self.password:
            offered.append("password")
        if self.look_for_keys:
            offered.append("keys found in ~/.ssh")
        if self.allow_agent:
            offered.append("ssh-agent keys")
        return " and ".join(offered) or "no credentials"

    def _credential_word(self) -> str:
        has_key = self.pkey is not None or bool(self.key_file)
        if has_key and self.password:
            return "key and password"
        return "key" if has_key else "password"

    # --- transfers -------------------------------------------------------------------------

    def _put(self, sftp: paramiko.SFTPClient, source: IO[bytes], remote: str, size: int) -> int:
        """Write ``source`` to ``remote`` with :class:`_WriteStream` (why: its docstring),
        in two sessions writing a half each where :meth:`_second_stream` opens one."""
        streams: list[_WriteStream] = []
        try:
            with sftp.open(remote, "wb") as target:
                streams.append(_WriteStream(sftp, target.handle, self.request_size))
                with self._second_stream(sftp, remote, size) as second:
                    if second is None:
                        streams[0].copy(source.fileno(), 0, size)
                    else:
                        streams.append(second)
                        _copy_in_two(source.fileno(), streams[0], second, size)
        except (OSError, EOFError, paramiko.SSHException) as error:
            raise MTargetTransferError(
                f"upload of {remote} failed after {sum(s.sent for s in streams)} of {size} "
                f"bytes: {type(error).__name__}: {error}"
            ) from error
        return sum(stream.sent for stream in streams)

    @contextmanager
    def _second_stream(
        self, sftp: paramiko.SFTPClient, remote: str, size: int
    ) -> Iterator[_WriteStream | None]:
        """A stream for the second half of ``remote`` (opened by ``sftp``) in another SFTP
        session on the same connection, closed after; None: upload in one stream.

        Why: each SSH channel has its own window (sshd's: 2 MiB); two double the bytes in
        flight, and sshd serves each session with a process of its own. Only for servers
        known to write each request at its offset (:data:`OFFSET_WRITE_SERVERS`: a server
        that appended, as some object-store gateways do, would keep the size and scramble
        the file), files of :data:`TWO_STREAMS_FROM` bytes or more and ``upload_streams``
        2 (the default; 1 turns it off). A session or open refused means one stream.
        """
        transport = sftp.get_channel().get_transport()
        software = (transport.remote_version or "").split("-", 2)[-1]
        if (
            self.upload_streams < 2
            or size < TWO_STREAMS_FROM
            or not software.startswith(OFFSET_WRITE_SERVERS)
        ):
            yield None
            return
        try:
            helper = paramiko.SFTPClient.from_transport(transport)
            if helper is None:
                raise paramiko.SSHException("no channel")
            try:
                channel = helper.get_channel()
                if channel is not None and self.op_timeout > 0:
                    channel.settimeout(self.op_timeout)
                handle = helper.open(remote, "r+")  # no truncation: the first session's file
            except BaseException:
                helper.close()
                raise
        except (OSError, EOFError, paramiko.SSHException) as error:
            self.log.info("%s: no second SFTP session (%s); one stream", self._where(), error)
            yield None
            return
        with helper, handle:
            yield _WriteStream(helper, handle.handle, self.request_size)

    def _verify_checksum(self, sftp: paramiko.SFTPClient, remote: str, local: Path) -> str | None:
        """SHA-256 of the remote file, where the server offers ``check-file``, vs the local.

        OpenSSH and asyncssh servers do not offer it (one refused request per connection
        finds out); the local file is hashed only when the server can answer.
        """
        if self._check_file_supported is False:
            return None
        try:
            with sftp.open(remote, "rb") as handle:
                remote_digest = handle.check("sha256")
        except OSError:
            self._check_file_supported = False
            self.log.info("The server offers no checksum (check-file); the size was checked")
            return None
        self._check_file_supported = True
        with open(local, "rb") as source:
            local_digest = hashlib.file_digest(source, "sha256").digest()
        if remote_digest != local_digest:
            with suppress(OSError):
                sftp.remove(remote)
            raise MTargetTransferError(f"{remote}: SHA-256 differs from {local.name}'s; removed")
        return "sha256"

    def _rename(self, sftp: paramiko.SFTPClient, old: str, new: str) -> None:
        try:
            sftp.posix_rename(old, new)
        except OSError as error:
            if error.errno is None and "unsupported" in str(error).lower():
                sftp.rename(old, new)  # no posix-rename@openssh.com: plain rename
            else:
                raise

    def _get(self, sftp: paramiko.SFTPClient, remote: str, out: IO[bytes], offset: int) -> int:
        """Copy ``remote`` from ``offset`` to its current size into ``out``, prefetched."""
        with sftp.open(remote, "rb") as source:
            size = int(source.stat().st_size or 0)
            if size < offset:
                raise MTargetTransferError(
                    f"{remote} is {size} bytes, shorter than the offset {offset}: it was replaced"
                )
            length = size - offset
            if length == 0:
                return 0
            source.MAX_REQUEST_SIZE = self.request_size
            source.seek(offset)
            source.prefetch(size, max_concurrent_requests=PREFETCH_REQUESTS)
            remaining = length
            while remaining:
                block = source.read(min(WRITE_BLOCK, remaining))
                if not block:
                    raise MTargetTransferError(
                        f"{remote}: the server stopped after {length - remaining} bytes"
                    )
                out.write(block)
                remaining -= len(block)
        return length


def unanswered_login(client: paramiko.SSHClient) -> str | None:
    """Why paramiko's ``AuthenticationException`` means the server never answered the
    login (a provider restarting or overloaded, a cut connection), not a refusal; None for
    a refusal.

    paramiko raises the same exception for a refusal, for a connection that ended during
    the login ("transport shut down or saw EOF") and for no answer within ``auth_timeout``
    ("Authentication timeout."). Only a refusal must not be retried (each one may count
    towards locking the account); the others are connection failures. Its auth handler
    forgets the login's user name when any answer arrives (``_parse_userauth_failure``):
    a handler that still holds it, on a server that sent no disconnect message
    (:class:`LoginTransport`), was never answered. A refusal, or a disconnect in place of
    one, stays a refusal.
    """
    transport = client.get_transport()
    if transport is None:
        return None
    if isinstance(transport, LoginTransport) and transport.server_disconnected:
        return None  # the server ended the login itself (too many failures, say)
    handler = getattr(transport, "auth_handler", None)
    if handler is None or getattr(handler, "username", None) is None:
        return None
    if getattr(handler, "authenticated", False):
        return None
    if transport.is_active():
        waited = getattr(transport, "auth_timeout", None)
        within = f"within {waited:g} s" if isinstance(waited, int | float) else "in time"
        return f"the server did not answer the login {within}"
    return "the server closed the connection during the login, before answering it"


class LoginTransport(paramiko.Transport):
    """paramiko's transport, remembering whether the server sent a disconnect message
    (paramiko only logs it): a server that ends a refused login with one has answered it,
    where a connection that just ends has not (:func:`unanswered_login`)."""

    server_disconnected = False

    def _parse_disconnect(self, m: paramiko.Message) -> None:
        self.server_disconnected = True
        super()._parse_disconnect(m)
