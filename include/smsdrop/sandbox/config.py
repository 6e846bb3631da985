"""What the sandbox plays: the account, the network's behaviour, the protocol's delays.

Rules are data: the statuses the ACK reports (:data:`STATUSES`), the outcome rates, the
opt-out keywords and the canned replies are tables, and :class:`SandboxConfig` holds every
knob with the spec's value as its default. docs/PROTOCOL.md says why each is so.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from smsdrop.csvfile import MAX_RECORDS
from smsdrop.dropbox import ACK_LARGE_DELAY, ACK_LARGE_FROM, ACK_SMALL_DELAY, ack_delay

__all__ = [
    "DEFAULT_ALLOWED",
    "DEFAULT_CIPHERS",
    "DEFAULT_QUOTA",
    "MO_TEXTS",
    "STATUSES",
    "STOP_KEYWORDS",
    "Outcome",
    "SandboxConfig",
    "Status",
]


class Outcome(StrEnum):
    """What became of one message; the ACK's STATUS column is the value."""

    DELIVERED = "delivered"
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    NO_CREDIT = "no_credit"


@dataclass(frozen=True)
class Status:
    """An ACK status: IDSTATUS code, whether the message left (and was billed), meaning."""

    idstatus: int
    sent: bool
    meaning: str


#: The sandbox's ACK statuses. The real provider's list is not published; its one example
#: is ``2;sent``, kept here. Our ACK loader maps these through a table, so a real list can
#: replace this one without code changes.
STATUSES: Final[dict[Outcome, Status]] = {
    Outcome.DELIVERED: Status(1, True, "the operator confirmed delivery to the handset"),
    Outcome.SENT: Status(2, True, "handed to the operator; no delivery receipt came back"),
    Outcome.FAILED: Status(3, True, "the operator refused it (unknown or non-mobile number)"),
    Outcome.EXPIRED: Status(4, True, "the handset stayed unreachable for the validity period"),
    Outcome.REJECTED: Status(
        5, False, "not sent: French marketing SMS due on a Sunday or public holiday"
    ),
    Outcome.NO_CREDIT: Status(6, False, "not sent: the account balance ran out"),
}

#: Outcomes drawn for a message that leaves (rates are normalised; non-mobiles always fail).
DEFAULT_RATES: Final[dict[Outcome, float]] = {
    Outcome.DELIVERED: 0.92,
    Outcome.SENT: 0.03,
    Outcome.FAILED: 0.02,
    Outcome.EXPIRED: 0.03,
}

#: Opt-out keywords seen in the field; a reply whose first word is one of them (any case,
#: accents ignored) is a STOP. The spellings the simulated recipients use are in
#: :data:`STOP_SPELLINGS`.
STOP_KEYWORDS: Final = frozenset(
    {"STOP", "ARRET", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "OPTOUT", "REVOKE"}
)
STOP_SPELLINGS: Final = (
    "STOP",
    "stop",
    "Stop",
    "STOP ",
    " stop",
    "ARRET",
    "arret",
    "ARRÊT",
    "Arrêt",
    "STOPALL",
    "stopall",
    "UNSUBSCRIBE",
    "unsubscribe",
    "END",
    "end",
    "QUIT",
    "quit",
    "CANCEL",
    "cancel",
    "OPTOUT",
    "optout",
    "REVOKE",
    "revoke",
    "Stop merci",
)
#: Replies that are not opt-outs (SMSMO only). Some hold the characters a CSV must quote.
MO_TEXTS: Final = (
    "Merci !",
    "OK",
    "C'est jusqu'à quand ?",
    "Quelle adresse ; svp",
    'Le code "PROMO" ne marche pas',
    "Bonjour,\nje voudrais des infos",
    "oui",
    "👍",
)

#: Ciphers the server offers. Only AES-GCM by default: asyncssh's ChaCha20-Poly1305 (the
#: OpenSSH client's first choice) runs in Python at ~half the speed, and with AES-CTR in the
#: offer OpenSSH picks CTR before GCM. Every current client (OpenSSH >= 6.2, paramiko,
#: asyncssh) speaks AES-GCM; widen with ``--ciphers`` for an old one.
DEFAULT_CIPHERS: Final = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")

#: Bytes the account may store in ``Send/`` (10 GiB: a 10-million-recipient campaign is
#: ~1.5 GB of SEND files, kept 30 days as ``.done``). None: no quota.
DEFAULT_QUOTA: Final = 10 * 1024**3

#: Who may connect when no allow-list is given: this machine only (the provider blocks
#: every address it was not told about).
DEFAULT_ALLOWED: Final = ("127.0.0.1/32", "::1/128")


@dataclass(frozen=True)
class SandboxConfig:
    """Every knob of the sandbox; defaults follow the provider's spec.

    Account: ``user``, ``authorized_keys`` / ``password_file`` (key and optional password
    auth), ``allow_ips`` (addresses or networks), ``service_id`` (not enforced: the provider
    takes any well-formed SERVICEID in a name), ``marketing`` (French window rules apply),
    ``long_sms`` (5 segments allowed), ``unicode`` (non-GSM texts go as UCS-2; otherwise the
    characters are replaced, as the spec says), ``balance`` (credits, one per segment;
    None: unlimited), ``window_end`` (22:00 per the spec; 20:00 where operators apply it).

    Hardening: ``quota`` (bytes in ``Send/``), ``max_auth_failures`` (per connection, then
    it is cut), ``auth_failure_delay`` / ``auth_failure_delay_max`` (real seconds an address
    waits per attempt after failures, doubling per failure).

    State: ``fsync`` (each commit of the state of campaigns in flight is fsync'ed; tests
    turn it off for speed: a killed process loses nothing either way).

    Timing (simulated): ``start`` and ``speed`` of the clock, ACK delays by volume,
    ``retention``, reply delays. Real time: ``poll_interval`` (the watcher's safety net),
    ``lock_delay`` (0: the provider locks at once).
    """

    root: Path
    host: str = "127.0.0.1"
    port: int = 2222
    user: str = "sandbox"
    authorized_keys: Path | None = None
    password_file: Path | None = None
    host_key: Path | None = None
    allow_ips: tuple[str, ...] = DEFAULT_ALLOWED
    seed: int = 0
    start: datetime | None = None
    speed: float = 1.0
    service_id: str | None = None
    marketing: bool = True
    window_end: time | None = None
    long_sms: bool = False
    unicode: bool = False
    file_encoding: str = "utf-8"
    max_records: int = MAX_RECORDS
    balance: int | None = None
    rates: dict[Outcome, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    stop_rate: float = 0.01
    mo_rate: float = 0.02
    reply_delay_mean: timedelta = timedelta(minutes=30)
    ack_small_delay: timedelta = ACK_SMALL_DELAY
    ack_large_delay: timedelta = ACK_LARGE_DELAY
    ack_large_from: int = ACK_LARGE_FROM
    retention: timedelta = timedelta(days=30)
    poll_interval: float = 0.5
    lock_delay: float = 0.0
    max_write_len: int = 261_120
    ciphers: tuple[str, ...] = DEFAULT_CIPHERS
    quota: int | None = DEFAULT_QUOTA
    max_auth_failures: int = 3
    auth_failure_delay: float = 1.0
    auth_failure_delay_max: float = 30.0
    fsync: bool = True
    #: A folder under the root the account may also write, never processed (benchmarks of
    #: the transfer alone); None (the default): only ``Send/`` is writable.
    scratch: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.scratch is not None and (
            not re.fullmatch(r"[A-Za-z0-9_-]+", self.scratch) or self.scratch in ("Send", "Report")
        ):
            raise ValueError(f"scratch must be a plain folder name, not {self.scratch!r}")
        for address in self.allow_ips:
            ipaddress.ip_network(address, strict=False)  # fail at start, not at connect
        if not self.speed > 0:
            raise ValueError(f"speed must be > 0, got {self.speed}")
        for name in ("stop_rate", "mo_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.stop_rate + self.mo_rate > 1:
            raise ValueError("stop_rate + mo_rate must not exceed 1")
        rates = {Outcome(k): float(v) for k, v in self.rates.items()}
        if set(rates) - set(DEFAULT_RATES) or any(v < 0 for v in rates.values()):
            raise ValueError(f"rates are for {', '.join(DEFAULT_RATES)} and must be >= 0")
        if not sum(rates.values()) > 0:
            raise ValueError("at least one outcome rate must be > 0")
        object.__setattr__(self, "rates", rates)
        if self.balance is not None and self.balance < 0:
            raise ValueError("balance must be >= 0")
        if not 1 <= self.max_records <= MAX_RECORDS:
            raise ValueError(f"max_records must be 1..{MAX_RECORDS}")
        if not self.ciphers:
            raise ValueError("at least one cipher must be offered")
        if self.quota is not None and self.quota < 0:
            raise ValueError("quota must be >= 0 bytes")
        if self.max_auth_failures < 1:
            raise ValueError("max_auth_failures must be >= 1")
        if not 0 <= self.auth_failure_delay <= self.auth_failure_delay_max:
            raise ValueError("auth_failure_delay must be between 0 and auth_failure_delay_max")
        if not 1024 <= self.max_write_len <= 4 * 1024 * 1024:
            raise ValueError("max_write_len must be between 1 KiB and 4 MiB")

    def ack_delay(self, messages: int) -> timedelta:
        """How long after the last send the ACK appears: the drop-box's rule
        (:func:`smsdrop.dropbox.ack_delay`, 1 day below 10,000 SMS, else 4) with this
        sandbox's delays and threshold."""
        return ack_delay(
            messages,
            small=self.ack_small_delay,
            large=self.ack_large_delay,
            large_from=self.ack_large_from,
        )

    def replace(self, **changes: Any) -> SandboxConfig:
        return replace(self, **changes)
