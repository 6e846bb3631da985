"""The SSH rules both hooks enforce: algorithms never negotiated, extras refused.

:class:`~smsdrop.airflow.hooks.MTargetHook` (paramiko) and
:class:`~smsdrop.airflow.async_hook.MTargetHookAsync` (asyncssh) connect with different
libraries, under one policy: the host key check cannot be switched off by an extra, CBC,
3DES and HMAC-MD5 are never offered, and AES-GCM is asked for first (docs/SECURITY.md,
docs/PERFORMANCE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import asyncssh
import paramiko

from smsdrop.airflow.exceptions import MTargetConfigError

__all__ = [
    "ASYNC_CIPHERS",
    "ASYNC_KEX",
    "ASYNC_MACS",
    "FAST_CIPHERS",
    "REFUSED_EXTRAS",
    "SLOW_CIPHERS",
    "WEAK_CIPHERS",
    "WEAK_KEX",
    "WEAK_MACS",
    "check_extras",
    "truthy",
]

#: Ciphers asked for: AES-GCM encrypts and authenticates in one pass (AES-NI), ~1.3x the
#: throughput of aes128-ctr + HMAC on the same machine (FIELD-NOTES).
FAST_CIPHERS: Final = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
#: Never negotiated, whatever the server offers: CBC modes (padding-oracle and plaintext
#: recovery attacks), 3DES (64-bit blocks: Sweet32), the other legacy ciphers asyncssh
#: still knows, and MAC algorithms built on MD5. Matched on the name, for both libraries.
WEAK_CIPHER_MARKS: Final = ("-cbc", "3des", "arcfour", "blowfish", "cast128", "seed-")
WEAK_MAC_MARKS: Final = ("md5",)


def _weak(name: str | bytes, marks: tuple[str, ...]) -> bool:
    text = name.decode() if isinstance(name, bytes) else name
    return any(mark in text.lower() for mark in marks)


#: Paramiko's weak ciphers and MACs: always in ``disabled_algorithms``.
WEAK_CIPHERS: Final = tuple(
    c for c in paramiko.Transport._preferred_ciphers if _weak(c, WEAK_CIPHER_MARKS)
)
WEAK_MACS: Final = tuple(m for m in paramiko.Transport._preferred_macs if _weak(m, WEAK_MAC_MARKS))
#: Key exchanges on SHA-1 (none in paramiko's list today: kept out should it come back).
WEAK_KEX: Final = tuple(k for k in paramiko.Transport._preferred_kex if k.endswith("-sha1"))
#: Every other cipher paramiko knows, disabled while AES-GCM is asked for (_algorithms).
SLOW_CIPHERS: Final = tuple(
    c
    for c in paramiko.Transport._preferred_ciphers
    if c not in FAST_CIPHERS and c not in WEAK_CIPHERS
)
#: Refused extras: each turns off host key verification in the SFTP provider's hooks.
REFUSED_EXTRAS: Final = (
    "no_host_key_check",
    "allow_host_key_change",
    "ignore_hostkey_verification",
)


def check_extras(conn_id: str, extras: Mapping[str, Any]) -> None:
    """Refuse a connection whose extras would skip the host key check (sync or async side).

    ``known_hosts: none`` is the async hook's spelling of ``no_host_key_check``.
    """
    for refused in REFUSED_EXTRAS:
        if truthy(extras.get(refused, False)):
            raise MTargetConfigError(
                f"connection {conn_id!r}: extra {refused}=true is refused; pin the "
                "server's key in the host_key extra instead"
            )
    known_hosts = extras.get("known_hosts")
    if isinstance(known_hosts, str) and known_hosts.strip().lower() == "none":
        raise MTargetConfigError(
            f"connection {conn_id!r}: extra known_hosts=none (no host key check) is refused; "
            "pin the server's key in the host_key extra instead"
        )


def numeric_extra(
    conn_id: str, extras: Mapping[str, Any], name: str, bounds: tuple[float, float, float]
) -> float:
    """The extra ``name`` as a number within ``bounds`` (default, lowest, highest; the
    default when absent). Anything else — a text, a boolean, 0, a request of 10 MB — is
    refused naming the connection and the extra (MTargetConfigError: no retry), instead of
    failing later and less clearly."""
    default, low, high = bounds
    raw = extras.get(name, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(raw, bool) or not low <= value <= high:
        shown = repr(raw)[:40]
        raise MTargetConfigError(
            f"connection {conn_id!r}: extra {name}={shown} is refused: a number from "
            f"{low:g} to {high:g} (default {default:g})"
        )
    return value


def truthy(value: object) -> bool:
    """An extra's value read as a flag (extras arrive as strings or JSON booleans)."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


#: asyncssh's algorithms minus the weak ones, AES-GCM first (as the sync hook asks).
ASYNC_CIPHERS: Final = [
    *FAST_CIPHERS,
    *(
        name
        for name in (c.decode() for c in asyncssh.encryption.get_encryption_algs())
        if not _weak(name, WEAK_CIPHER_MARKS) and name not in FAST_CIPHERS
    ),
]
ASYNC_MACS: Final = [
    m.decode() for m in asyncssh.mac.get_mac_algs() if not _weak(m, WEAK_MAC_MARKS)
]
#: asyncssh's default key exchanges minus those on SHA-1 (paramiko offers none of them).
ASYNC_KEX: Final = [
    k.decode() for k in asyncssh.kex.get_default_kex_algs() if not k.endswith(b"-sha1")
]
