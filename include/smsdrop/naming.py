"""Provider file names: ``KIND-SERVICEID-YYYYMMDD-HHMM-CAMPAIGNID.EXT``.

The file name is the provider's only control channel: it carries the account (SERVICEID),
the scheduled Paris wall time (DATE, HOUR) and the campaign. A name the provider cannot read
is rejected or, worse, scheduled at the wrong time, so names are built and parsed here only,
from one table of rules (:data:`PARTS`; the kinds and their extensions are the drop-box's,
:mod:`smsdrop.dropbox`, re-exported here), and every refusal says which part is wrong,
what was expected and what was found.

Time rules (see docs/PROTOCOL.md):

* building: an aware instant is converted to Europe/Paris (always unambiguous) and floored
  to the minute, so the name never announces a time later than the one asked for;
* parsing: a wall time in the spring-forward gap means the first instant after the gap (what
  a scheduler does with a skipped time); an ambiguous autumn wall time means its first
  occurrence (``fold=0``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import PurePath
from typing import Final
from zoneinfo import ZoneInfo

from smsdrop.dropbox import EXTENSIONS, FileKind
from smsdrop.errors import InvalidName
from smsdrop.fields import CAMPAIGN_ID, CAMPAIGN_ID_MAX, SERVICE_ID, Field

__all__ = [
    "CAMPAIGN_ID_MAX",
    "EXTENSIONS",
    "MAX_CHUNKS",
    "PARIS",
    "PARTS",
    "FileKind",
    "Part",
    "ProviderName",
    "build_name",
    "chunk_campaign_ids",
    "parse_name",
    "require_aware",
    "to_instant",
]

#: The provider's clock: DATE and HOUR in names are French local time.
PARIS: Final = ZoneInfo("Europe/Paris")


#: Upper bound for :func:`chunk_campaign_ids` (keeps the suffix at most 4 digits).
MAX_CHUNKS: Final = 9999
#: Length of the base36 digest inserted when a chunked campaign id must be truncated.
_HASH_LEN: Final = 6
_PATTERN: Final = "KIND-SERVICEID-YYYYMMDD-HHMM-CAMPAIGNID.EXT"


@dataclass(frozen=True)
class Part:
    """One dash-separated part of a name: its label, its exact syntax, and how to say it."""

    label: str
    regex: re.Pattern[str] = field(repr=False)
    expected: str

    @classmethod
    def of(cls, rule: Field) -> Part:
        """The part a campaign field fills: its rule is the field's (:mod:`smsdrop.fields`)."""
        return cls(str(rule.part), re.compile(str(rule.pattern)), rule.expected)


#: The parts of a name stem, in order. ``[0-9]``/``[A-Za-z0-9]`` rather than ``\\d``/``\\w``:
#: those accept non-ASCII digits and letters, which the provider does not.
PARTS: Final[tuple[Part, ...]] = (
    Part("KIND", re.compile("|".join(k.value for k in FileKind)), "one of SEND, ACK, STOP, SMSMO"),
    Part.of(SERVICE_ID),
    Part("DATE", re.compile("[0-9]{8}"), "8 digits YYYYMMDD"),
    Part("HOUR", re.compile("[0-9]{4}"), "4 digits HHMM"),
    Part.of(CAMPAIGN_ID),
)
_PART: Final = {p.label: p for p in PARTS}


def require_aware(when: datetime, what: str = "time") -> datetime:
    """Refuse a naive datetime: its meaning depends on the host's clock, a silent bug."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(
            f"{what} must be timezone-aware (e.g. datetime(..., tzinfo=ZoneInfo('Europe/Paris'))),"
            f" got naive {when.isoformat()}"
        )
    return when


def to_instant(local: datetime, tz: tzinfo = PARIS) -> datetime:
    """The instant (UTC-aware) meant by a naive wall time in ``tz``, DST holes resolved.

    UTC, not ``tz``: a Paris-zoned datetime in the repeated autumn hour never compares equal
    to any other zone's datetime (PEP 495), and ``+ timedelta`` on a zoned datetime is wall
    clock arithmetic. Use ``.astimezone(PARIS)`` to display.

    * gap (spring forward, e.g. 2026-03-29 02:30 Paris does not exist): the first instant
      after the gap (03:00 CEST), as cron-like schedulers run skipped times;
    * overlap (fall back, 2026-10-25 02:30 happens twice): the first occurrence (fold=0).
    """
    first = local.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local.replace(fold=0):
        return first.astimezone(UTC)
    # In a gap: fold=0 reads it with the offset before the transition (too late), fold=1
    # with the offset after (too early). The transition instant lies between: bisect it.
    lo = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first.astimezone(UTC)
    lo, hi = min(lo, hi), max(lo, hi)
    # Whole seconds: every tz transition is on a whole second.
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) < local:
            lo_s = mid
        else:
            hi_s = mid
    return datetime.fromtimestamp(hi_s, UTC)


def _as_kind(value: FileKind | str) -> FileKind:
    try:
        return FileKind(value)
    except ValueError:
        expected = _PART["KIND"].expected
        raise InvalidName(f"expected {expected}, found {value!r}", field="KIND") from None


def _check_part(label: str, value: str) -> None:
    part = _PART[label]
    if not part.regex.fullmatch(value):
        raise InvalidName(f"expected {part.expected}, found {value!r}", field=label)


def _check_ext(kind: FileKind, ext: str) -> None:
    if ext not in EXTENSIONS[kind]:
        allowed = ", ".join(EXTENSIONS[kind])
        raise InvalidName(f"for {kind} expected one of {allowed}, found {ext!r}", field="EXT")


@dataclass(frozen=True)
class ProviderName:
    """A valid provider file name, as fields. Construction validates every field.

    ``local`` is the naive Paris wall time of the name, at minute precision; :attr:`at` is
    the instant it means.
    """

    kind: FileKind
    service_id: str
    local: datetime
    campaign_id: str
    ext: str = "csv"

    def __post_init__(self) -> None:
        kind = _as_kind(self.kind)
        object.__setattr__(self, "kind", kind)
        _check_part("SERVICEID", self.service_id)
        _check_part("CAMPAIGNID", self.campaign_id)
        _check_ext(kind, self.ext)
        if self.local.tzinfo is not None:
            raise ValueError(f"local must be a naive Paris wall time, got {self.local!r}")
        if self.local.second or self.local.microsecond:
            raise ValueError(f"local must be at minute precision, got {self.local!r}")
        if not 1000 <= self.local.year <= 9999:
            raise InvalidName(f"year {self.local.year} does not fit YYYY", field="DATE")
        if self.local.fold:  # fold is not in the name: normalise so equal names are equal
            object.__setattr__(self, "local", self.local.replace(fold=0))

    @property
    def stem(self) -> str:
        """The name without its extension: what stays the same through tmp → csv → done."""
        return "-".join(
            (
                self.kind.value,
                self.service_id,
                self.local.strftime("%Y%m%d"),
                self.local.strftime("%H%M"),
                self.campaign_id,
            )
        )

    @property
    def name(self) -> str:
        """The full file name."""
        return f"{self.stem}.{self.ext}"

    @property
    def at(self) -> datetime:
        """The instant (UTC) the name schedules: gap → first instant after, overlap → first."""
        return to_instant(self.local, PARIS)

    def with_ext(self, ext: str) -> str:
        """The file name with another extension (e.g. ``tmp`` while uploading)."""
        _check_ext(self.kind, ext)
        return f"{self.stem}.{ext}"

    def with_kind(self, kind: FileKind | str, ext: str = "csv") -> ProviderName:
        """The same campaign and slot under another kind: the ACK/STOP/SMSMO of a SEND."""
        return ProviderName(_as_kind(kind), self.service_id, self.local, self.campaign_id, ext)

    def __str__(self) -> str:
        return self.name


def build_name(
    kind: FileKind | str,
    service_id: str,
    when: datetime,
    campaign_id: str,
    ext: str = "csv",
) -> ProviderName:
    """The name scheduling ``when`` (aware), in Paris time, floored to the minute.

    Flooring, not rounding: the window guard (:mod:`smsdrop.windows`) has minute boundaries,
    so an instant it allowed stays allowed once floored, whereas rounding 21:59:30 up would
    give 22:00, a slot the provider queues to the next morning.
    """
    require_aware(when, "when")
    local = when.astimezone(PARIS).replace(tzinfo=None, second=0, microsecond=0, fold=0)
    return ProviderName(_as_kind(kind), service_id, local, campaign_id, ext)


def _typo_hint(first: str) -> str:
    """Explain the commonest malformation: the dash after KIND missing (spec example typo)."""
    for kind in FileKind:
        if first.startswith(kind.value) and len(first) > len(kind.value):
            return f"; missing '-' after {kind.value} in {first!r}?"
    return ""


def parse_name(name: str | PurePath) -> ProviderName:
    """Parse a provider file name (or a path: its basename), strictly.

    Strict on purpose: the provider ignores or rejects names off the pattern, so accepting
    one here would hide a file that will never be processed. In particular the spec's
    ``SEND12345-20160728-1827-testpushsftp.csv`` (no dash after SEND) is refused.
    """
    base = PurePath(name).name if isinstance(name, PurePath) else re.split(r"[\\/]", name)[-1]

    def fail(message: str, part: str | None = None) -> InvalidName:
        return InvalidName(f"{message} (expected {_PATTERN})", file=base or str(name), field=part)

    stem, dot, ext = base.rpartition(".")
    if not dot:
        raise fail(f"no extension in {base!r}", "EXT")
    parts = stem.split("-")
    if len(parts) != len(PARTS):
        hint = _typo_hint(parts[0]) if len(parts) == len(PARTS) - 1 else ""
        raise fail(f"expected {len(PARTS)} parts separated by '-', found {len(parts)}{hint}")
    for part, value in zip(PARTS, parts, strict=True):
        if not part.regex.fullmatch(value):
            raise fail(f"expected {part.expected}, found {value!r}", part.label)
    kind_s, service_id, date_s, hour_s, campaign_id = parts
    kind = FileKind(kind_s)
    if ext not in EXTENSIONS[kind]:
        allowed = ", ".join(EXTENSIONS[kind])
        raise fail(f"for {kind} expected one of {allowed}, found {ext!r}", "EXT")
    try:
        day = datetime.strptime(date_s, "%Y%m%d")
    except ValueError:
        raise fail(f"{date_s!r} is not a calendar date YYYYMMDD", "DATE") from None
    hh, mm = int(hour_s[:2]), int(hour_s[2:])
    if hh > 23 or mm > 59:
        raise fail(f"{hour_s!r} is not a time HHMM with HH 00-23 and MM 00-59", "HOUR")
    return ProviderName(kind, service_id, day.replace(hour=hh, minute=mm), campaign_id, ext)


def _base36(data: bytes, length: int) -> str:
    """Lower-case base36 of a digest, fixed length: alphanumeric and case-proof."""
    n = int.from_bytes(data, "big")
    digits = []
    for _ in range(length):
        n, r = divmod(n, 36)
        digits.append("0123456789abcdefghijklmnopqrstuvwxyz"[r])
    return "".join(reversed(digits))


def chunk_campaign_ids(campaign_id: str, n_files: int) -> list[str]:
    """Campaign ids for a campaign split into ``n_files`` SEND files (>1M rows, or waves).

    ``n_files == 1`` keeps the id. Otherwise each id is the campaign id followed by the
    1-based index, zero-padded to the width of ``n_files`` (``promo`` in 12 files → ``promo01`` …
    ``promo12``). When that exceeds 20 characters the id is cut and a 6-character base36
    blake2b digest of the *whole* id is inserted before the index, so two long ids sharing
    a prefix still get different chunk ids. Deterministic across processes and hosts.
    """
    _check_part("CAMPAIGNID", campaign_id)
    if not 1 <= n_files <= MAX_CHUNKS:
        raise ValueError(f"n_files must be between 1 and {MAX_CHUNKS}, got {n_files}")
    if n_files == 1:
        return [campaign_id]
    width = len(str(n_files))
    stem = campaign_id
    if len(campaign_id) + width > CAMPAIGN_ID_MAX:
        digest = hashlib.blake2b(campaign_id.encode("ascii"), digest_size=8).digest()
        stem = campaign_id[: CAMPAIGN_ID_MAX - width - _HASH_LEN] + _base36(digest, _HASH_LEN)
    return [f"{stem}{i:0{width}d}" for i in range(1, n_files + 1)]
