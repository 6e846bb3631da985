"""The provider's SFTP drop-box as an Airflow hook: :class:`MTargetHook`.

Built on the provider package's :class:`~airflow.providers.sftp.hooks.sftp.SFTPHook`
(paramiko): connection parsing, key loading and the SSH handshake stay theirs. What this
hook adds, and why:

* **Host key pinned, always.** The connection's ``host_key`` extra must hold the server's
  public key; ``no_host_key_check`` and ``allow_host_key_change`` are refused. A missing pin,
  an unknown key or a changed key fails with the host and both fingerprints in the message
  (the provider takes real money for every file it receives: talking to an impostor is
  not an option).
* **No retry storm.** Paramiko's login errors are never retried (the provider could lock the
  account); only connection-level errors are, ``connect_attempts`` times. Refusals raise
  :class:`~smsdrop.airflow.exceptions.MTargetFailure`, which fails the task without retries.
  ``look_for_keys`` is off unless asked: only the connection's own credentials are offered.
* **Managed connections only.** ``SFTPHook.get_conn()`` can hand back a client closed by an
  earlier helper call (FIELD-NOTES); every method here runs inside
  :meth:`get_managed_conn`, which opens one connection for nested calls and closes it after.
* **The protocol**: :meth:`remote_state` of a SEND name (absent, tmp, csv, lock, done,
  reject), :meth:`upload_atomic` (``name.tmp`` → size and, where the server offers it,
  checksum → POSIX rename to ``name.csv``), reports listed, downloaded, deleted, and read
  incrementally from a byte offset (:meth:`read_from`) while the provider appends.
* **Fast transfers** (FIELD-NOTES recipe, docs/PERFORMANCE.md): AES-GCM is
  negotiated when the server offers it (paramiko alone picks aes128-ctr), requests are
  261120 bytes (OpenSSH's own write length; paramiko's default is 32 KiB) and pipelined,
  reads are prefetched. Compression is off: CSV over a fast link is CPU-bound and zlib
  halves the speed.

Connection extras read here (besides the SFTP provider's ``host_key``, ``key_file``,
``private_key``, ``private_key_passphrase``, ``conn_timeout``, ``ciphers``):
``send_dir`` (default ``Send``), ``report_dir`` (``Report``), ``connect_attempts`` (3),
``op_timeout`` (seconds an SFTP request may take, 120), ``request_size`` (261120),
``compress`` (false), ``look_for_keys`` (false), ``allow_agent`` (false).

Beside it: the SSH policy it shares with the triggers' asyncssh hook
(:mod:`smsdrop.airflow.ssh_rules`), that hook (:mod:`smsdrop.airflow.async_hook`), and the
drop-box's states and probe order (:mod:`smsdrop.dropbox`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import socket
import stat as stat_module
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import IO, Any, ClassVar, Final

import paramiko
from airflow.providers.sftp.hooks.sftp import SFTPHook

from smsdrop.airflow.exceptions import (
    MTargetAuthError,
    MTargetConfigError,
    MTargetHostKeyError,
    MTargetTransferError,
)
from smsdrop.airflow.ssh_rules import (
    FAST_CIPHERS,
    SLOW_CIPHERS,
    WEAK_CIPHERS,
    WEAK_KEX,
    WEAK_MACS,
    check_extras,
    truthy,
)
from smsdrop.dropbox import (
    PROBE_ORDER,
    REPORT_KINDS,
    FileKind,
    RemoteState,
    latest_state,
    state_file,
    stem_of,
)
from smsdrop.errors import InvalidName
from smsdrop.naming import ProviderName, parse_name

__all__ = ["FAST_CIPHERS", "REQUEST_SIZE", "MTargetHook", "SendState", "send_name"]

#: OpenSSH's own SFTP write length (SFTP_MAX_MSG_LENGTH - 1024): servers built on OpenSSH
#: drop the session above ~256 KiB per request, and paramiko's 32 KiB default is what makes
#: ``SFTPHook.store_file`` run at 0.42x OpenSSH's ``sftp`` (FIELD-NOTES).
REQUEST_SIZE: Final = 261_120
#: Local read size while uploading: large writes keep the pipeline full.
WRITE_BLOCK: Final = 4 * 1024 * 1024
#: Read requests in flight while downloading (64 x 255 KiB: ~16 MB buffered at most).
PREFETCH_REQUESTS: Final = 64


@dataclass(frozen=True)
class SendState:
    """What :meth:`MTargetHook.remote_state` found for one SEND name.

    ``state`` is the most advanced file present; ``sizes`` has every file found by
    extension (a stale ``tmp`` can sit next to a ``done`` if someone uploaded by hand).
    """

    stem: str
    state: RemoteState
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def stale_tmp(self) -> bool:
        return RemoteState.TMP.value in self.sizes

    @property
    def size(self) -> int | None:
        """Bytes of the most advanced file (None when absent)."""
        return self.sizes.get(self.state.value)


def send_name(name: str) -> ProviderName:
    """``name`` as a SEND file name ending in ``.csv`` (the name the provider processes).

    Raises :class:`MTargetConfigError` otherwise: a name off the pattern is ignored or
    rejected by the provider, so uploading it would only hide a campaign nobody sends.
    """
    try:
        parsed = parse_name(name)
    except InvalidName as error:
        raise MTargetConfigError(f"not a SEND file name: {error}") from None
    if parsed.kind is not FileKind.SEND or parsed.ext != RemoteState.CSV:
        raise MTargetConfigError(
            f"{name!r} is not a SEND-….csv name (kind {parsed.kind}, extension {parsed.ext})"
        )
    return parsed


def _fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


class MTargetHook(SFTPHook):
    """
    Talk to the provider's SFTP drop-box (``Send/`` and ``Report/``).

    Connection type ``sftp``; the extras are listed in this module's docstring. The
    ``host_key`` extra is required.

    :param mtarget_conn_id: the connection (default ``mtarget_default``)
    :param send_dir: overrides the ``send_dir`` extra (default ``Send``)
    :param report_dir: overrides the ``report_dir`` extra (default ``Report``)
    """

    #: Servers found without AES-GCM in this process: not asked again (one handshake saved).
    _without_gcm: ClassVar[set[tuple[str, int | None]]] = set()

    conn_name_attr = "mtarget_conn_id"
    default_conn_name = "mtarget_default"
    conn_type = "sftp"
    hook_name = "MTarget SFTP"

    def __init__(
        self,
        mtarget_conn_id: str = default_conn_name,
        *,
        send_dir: str | None = None,
        report_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.mtarget_conn_id = mtarget_conn_id
        # Checked before the provider's hook parses the extras: it has its own rules on
        # some of these combinations, with messages that do not say what to do.
        extras = self.get_connection(mtarget_conn_id).extra_dejson
        check_extras(mtarget_conn_id, extras)
        super().__init__(ssh_conn_id=mtarget_conn_id, conn_retry_attempts=1, **kwargs)
        self.send_dir = (send_dir or extras.get("send_dir") or "Send").rstrip("/")
        self.report_dir = (report_dir or extras.get("report_dir") or "Report").rstrip("/")
        self.connect_attempts = max(1, int(extras.get("connect_attempts", 3)))
        self.op_timeout = float(extras.get("op_timeout", 120))
        self.request_size = int(extras.get("request_size", REQUEST_SIZE))
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
            and (self.remote_host, self.port) not in MTargetHook._without_gcm
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
                MTargetHook._without_gcm.add((self.remote_host, self.port))
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
            client.connect(**kwargs)
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

    # --- paths -----------------------------------------------------------------------------

    def send_path(self, file_name: str) -> str:
        return posixpath.join(self.send_dir, file_name)

    def report_path(self, file_name: str) -> str:
        return posixpath.join(self.report_dir, file_name)

    # --- SEND files ------------------------------------------------------------------------

    def remote_state(self, name: str) -> SendState:
        """Where the SEND file ``name`` (any extension, or a stem) is in ``Send/``.

        Each state's file is stat'ed in the order files move (:data:`PROBE_ORDER`), so a
        file the provider renames meanwhile is still seen once; the answer is the most
        advanced file present.
        """
        stem = stem_of(name)
        found: dict[str, int] = {}
        with self.get_managed_conn() as sftp:
            for state in PROBE_ORDER:
                try:
                    attrs = sftp.stat(self.send_path(state_file(stem, state)))
                except FileNotFoundError:
                    continue
                except OSError as error:
                    if error.errno == errno.ENOENT:
                        continue
                    raise
                found[state.value] = int(attrs.st_size or 0)
        return SendState(stem, latest_state(found), found)

    def delete_send_file(self, file_name: str) -> None:
        """Remove ``Send/file_name`` (a stale ``.tmp``; or, once processed, our copy)."""
        with self.get_managed_conn() as sftp:
            sftp.remove(self.send_path(file_name))

    def upload_atomic(self, local_path: str | os.PathLike[str], remote_name: str) -> dict:
        """Upload ``local_path`` as ``Send/<stem>.tmp``, verify it, rename it ``<stem>.csv``.

        The primitive under :class:`~smsdrop.airflow.operators.MTargetUploadOperator`,
        which decides *whether* to call it (remote state first). Verification: the remote
        size must equal the local size, and when the server offers the ``check-file``
        extension the SHA-256 must match too. The rename is POSIX (``posix-rename@openssh.com``,
        atomic), plain rename where the server lacks it. The ``.csv`` is not stat'ed
        afterwards: the provider renames it at once, so its absence proves nothing.

        Returns ``{"bytes": …, "checksum": "sha256"|None, "seconds": …}``.
        """
        parsed = send_name(remote_name)
        local = Path(local_path)
        size = local.stat().st_size
        tmp = self.send_path(parsed.with_ext(RemoteState.TMP))
        final = self.send_path(parsed.with_ext(RemoteState.CSV))
        started = time.perf_counter()
        with self.get_managed_conn() as sftp:
            with open(local, "rb") as source:
                sent = self._put(sftp, source, tmp, size)
            remote_size = sftp.stat(tmp).st_size
            if remote_size != size:
                with suppress(OSError):
                    sftp.remove(tmp)
                raise MTargetTransferError(
                    f"{tmp} is {remote_size} bytes after the upload, {local.name} is {size}: "
                    "removed; the retry uploads it again"
                )
            checksum = self._verify_checksum(sftp, tmp, local)
            self._rename(sftp, tmp, final)
        seconds = time.perf_counter() - started
        self.log.info(
            "Uploaded %s (%d bytes in %.2f s, %.0f MB/s) and renamed it %s",
            tmp,
            sent,
            seconds,
            sent / seconds / 1e6 if seconds > 0 else 0.0,
            final,
        )
        return {"bytes": size, "checksum": checksum, "seconds": round(seconds, 3)}

    def _put(self, sftp: paramiko.SFTPClient, source: IO[bytes], remote: str, size: int) -> int:
        """Pipelined writes of :attr:`request_size` bytes from large local reads."""
        sent = 0
        try:
            with sftp.open(remote, "wb") as target:
                target.MAX_REQUEST_SIZE = self.request_size  # per file, not paramiko-wide
                target.set_pipelined(True)
                while block := source.read(WRITE_BLOCK):
                    target.write(block)
                    sent += len(block)
        except (OSError, EOFError, paramiko.SSHException) as error:
            raise MTargetTransferError(
                f"upload of {remote} failed after {sent} of {size} bytes: "
                f"{type(error).__name__}: {error}"
            ) from error
        return sent

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

    # --- reports ---------------------------------------------------------------------------

    def list_reports(self, kind: FileKind | str | None = None) -> list[str]:
        """Report names in ``Report/`` (ACK, STOP, SMSMO; ``kind`` filters), sorted.

        Anything that does not parse as a report name is left out.
        """
        wanted = FileKind(kind) if kind is not None else None
        with self.get_managed_conn() as sftp:
            entries = sftp.listdir_attr(self.report_dir)
        names = []
        for entry in entries:
            if not stat_module.S_ISREG(entry.st_mode or 0):
                continue
            try:
                parsed = parse_name(entry.filename)
            except InvalidName:
                continue
            if parsed.kind not in REPORT_KINDS or (
                wanted is not None and parsed.kind is not wanted
            ):
                continue
            names.append(entry.filename)
        return sorted(names)

    def report_size(self, file_name: str) -> int | None:
        """Bytes of ``Report/file_name``, or None when it is not there (yet)."""
        with self.get_managed_conn() as sftp:
            try:
                return int(sftp.stat(self.report_path(file_name)).st_size or 0)
            except FileNotFoundError:
                return None

    def download_report(self, file_name: str, local_path: str | os.PathLike[str]) -> int:
        """Download ``Report/file_name`` to ``local_path`` (complete or not at all).

        Written beside the target under a ``.partial`` name and renamed into place, so a
        reader never sees half a report. Returns the number of bytes.
        """
        target = Path(local_path)
        partial = target.with_name(target.name + ".partial")
        remote = self.report_path(file_name)
        with self.get_managed_conn() as sftp, open(partial, "wb") as out:
            try:
                size = self._get(sftp, remote, out, 0)
            except BaseException:
                out.close()
                partial.unlink(missing_ok=True)
                raise
        os.replace(partial, target)
        return size

    def read_from(self, remote_path: str, offset: int = 0) -> bytes:
        """The bytes of ``remote_path`` from ``offset`` to its size now.

        For STOP and SMSMO reports, which the provider appends to in real time: read what is
        new since the last offset and feed it to :func:`smsdrop.reports.parse_replies_from`,
        which keeps an incomplete last record for the next read. Reading stops at the size
        the server reported when the file was opened, so a concurrent append is read next
        time, not half now. A file shorter than ``offset`` raises: it was replaced.
        """
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        buffer = BytesIO()
        with self.get_managed_conn() as sftp:
            self._get(sftp, remote_path, buffer, offset)
        return buffer.getvalue()

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

    def delete_report(self, file_name: str) -> None:
        """Remove ``Report/file_name`` (the provider asks clients to delete what they took)."""
        with self.get_managed_conn() as sftp:
            sftp.remove(self.report_path(file_name))
