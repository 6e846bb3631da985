"""From an accepted SEND file to what the network will do with it: pure functions, no I/O
but reading the file.

* :func:`build_plan` reads the records once more (the check has accepted them) and adds
  what sending needs: destination country, mobile or not, segments as the account sends
  them.
* :func:`schedule` applies the provider's timing rules: the name's Paris time, a past time
  meaning now, and for a marketing account the French window per destination (outside
  08:00–22:00 queued to the next allowed 08:00; Sundays and public holidays rejected).
* :func:`draw` fixes, from the seed, each message's network outcome and whether and when
  its recipient replies, so a run is reproducible.

Everything is vectorised over the records: a 1,000,000-record file costs ~1 s here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from smsdrop import windows
from smsdrop.csvfile import read_records
from smsdrop.gsm import MAX_LONG_SEGMENTS, EncodingPolicy, check_messages, text_facts
from smsdrop.msisdn import MsisdnStatus, classify
from smsdrop.naming import ProviderName
from smsdrop.reasons import Reason
from smsdrop.sandbox.config import (
    DEFAULT_RATES,
    MO_TEXTS,
    STOP_SPELLINGS,
    Outcome,
    SandboxConfig,
)

__all__ = ["OUTCOMES", "Batch", "Draws", "Plan", "build_plan", "draw", "schedule"]

#: Outcome codes as stored in int8 arrays: the index in this tuple (-1: not decided yet).
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
CODE: dict[Outcome, int] = {outcome: code for code, outcome in enumerate(OUTCOMES)}
#: Reply kinds drawn per message.
NO_REPLY, STOP_REPLY, MO_REPLY = 0, 1, 2


@dataclass(frozen=True)
class Plan:
    """The records of one accepted SEND file, with what sending needs, in file order."""

    file: str  # the name as received, ….csv
    name: ProviderName
    idremote: pa.Array  # large_string, as in the file
    msisdn: pa.Array
    oadc: pa.Array
    msg: pa.Array
    country: np.ndarray  # object: ISO code or None
    mobile: np.ndarray  # bool
    segments: np.ndarray  # int64, as the account sends the text
    row: np.ndarray  # int64 record numbers from 1

    @property
    def size(self) -> int:
        return len(self.segments)

    @property
    def stem(self) -> str:
        return self.name.stem


def build_plan(path: Path, file: str, name: ProviderName, config: SandboxConfig) -> Plan:
    """Read an accepted SEND file (at ``path``) into a :class:`Plan`.

    Segments follow the account: with Unicode, a non-GSM text goes as UCS-2; without it the
    spec says unsupported characters are replaced, which the sandbox does as our own
    transliteration then ``?`` for what is left, counting GSM-7 segments of the result.
    """
    parsed = read_records(path.read_bytes(), file, encoding=config.file_encoding)
    table = parsed.table
    strings = {
        col: table.column(col).combine_chunks().cast(pa.large_string())
        for col in ("idremote", "msisdn", "oadc", "msg")
    }
    numbers = classify(
        pd.Series(pd.array(strings["msisdn"], dtype=pd.ArrowDtype(pa.large_string())))
    )
    policy = EncodingPolicy.UCS2 if config.unicode else EncodingPolicy.TRANSLITERATE
    messages = check_messages(
        pd.Series(pd.array(strings["msg"], dtype=pd.ArrowDtype(pa.large_string()))),
        policy,
        config.long_sms,
    )
    segments = messages["segments"].to_numpy(dtype=np.int64).copy()
    replaced = (messages["reason"] == Reason.MSG_NOT_GSM.value).to_numpy(dtype=bool)
    if replaced.any():
        segments[replaced] = _replaced_segments(messages["msg"][replaced])
    return Plan(
        file=file,
        name=name,
        idremote=strings["idremote"],
        msisdn=strings["msisdn"],
        oadc=strings["oadc"],
        msg=strings["msg"],
        country=numbers["country"]
        .astype(object)
        .where(numbers["country"].notna(), None)
        .to_numpy(dtype=object),
        mobile=(numbers["status"] == MsisdnStatus.MOBILE.value).to_numpy(dtype=bool),
        segments=segments,
        row=table.column("record").to_numpy(),
    )


def _replaced_segments(texts: pd.Series) -> np.ndarray:
    """GSM-7 segments of texts whose non-GSM characters become ``?`` (per distinct text)."""
    counts: dict[str, int] = {}
    for text in texts.unique():
        facts = text_facts(text)
        counts[text] = text_facts("".join("?" if c in facts.non_gsm else c for c in text)).segments
    return texts.map(counts).to_numpy(dtype=np.int64)


@dataclass(frozen=True)
class Batch:
    """Messages (row indices, from 0) decided at one simulated instant.

    ``rejected``: the provider refuses them there (French marketing SMS due on a Sunday or a
    public holiday), otherwise they are sent. ``reason`` says why they are at ``at``.
    """

    at: datetime
    rows: np.ndarray
    rejected: bool
    reason: str


def schedule(plan: Plan, accepted_at: datetime, config: SandboxConfig) -> list[Batch]:
    """When each message goes, as batches in time order.

    The due time is the name's Paris wall time (``ProviderName.at``); one in the past means
    ``accepted_at`` ("sent immediately"). A marketing account applies the destination's
    window (:mod:`smsdrop.windows`; only France has one): allowed → sent when due; due on a
    closed day (Sunday, public holiday) → rejected; due outside the hours of an open day →
    queued to the next allowed start (08:00, possibly after a Sunday or holiday).
    """
    due = max(plan.name.at, accepted_at)
    everyone = np.arange(plan.size, dtype=np.int64)
    if not config.marketing:
        return [Batch(due, everyone, False, "transactional account: no window")]
    decided: dict[tuple[datetime, bool, str], list[np.ndarray]] = {}
    countries = pd.Series(plan.country, dtype=object).fillna("")
    for country, rows in countries.groupby(countries, sort=True).indices.items():
        at, rejected, reason = _decide(due, str(country), config)
        decided.setdefault((at, rejected, reason), []).append(np.asarray(rows, dtype=np.int64))
    batches = [
        Batch(at, np.sort(np.concatenate(parts)), rejected, reason)
        for (at, rejected, reason), parts in decided.items()
    ]
    return sorted(batches, key=lambda b: (b.at, b.rejected, int(b.rows[0])))


@cache
def _window(country: str, end: object) -> windows.SendWindow | None:
    return windows.provider_window(country, end=end)  # type: ignore[arg-type]


def _decide(due: datetime, country: str, config: SandboxConfig) -> tuple[datetime, bool, str]:
    window = _window(country, config.window_end)
    if window is None:
        return due, False, "no send window for the destination"
    decision = windows.check(due, window=window)
    if decision.allowed:
        return due, False, "allowed"
    closed = window.closed_reason(due.astimezone(window.tz).date())
    if closed is not None:
        return due, True, f"{country} marketing SMS not allowed: {closed}"
    return decision.next, False, f"queued: {decision.reason}"


@dataclass(frozen=True)
class Draws:
    """What fate holds for each message, fixed from the seed and the file's name."""

    network: np.ndarray  # int8 outcome code if the message leaves
    reply: np.ndarray  # int8: NO_REPLY, STOP_REPLY, MO_REPLY (only if delivered)
    reply_delay: np.ndarray  # float64 simulated seconds after the send
    reply_text: np.ndarray  # int64 index into STOP_SPELLINGS or MO_TEXTS


def _rng(seed: int, stem: str, purpose: str) -> np.random.Generator:
    """A generator for one file and purpose: same seed and name, same draws, on any host."""
    digest = hashlib.blake2b(f"{stem}\0{purpose}".encode(), digest_size=16).digest()
    return np.random.default_rng([seed, *np.frombuffer(digest, dtype=np.uint32).tolist()])


def draw(plan: Plan, config: SandboxConfig) -> Draws:
    """Each message's network outcome (by the configured rates; a non-mobile always fails)
    and its recipient's reply (a STOP or another reply, after an exponential delay)."""
    rng = _rng(config.seed, plan.stem, "outcomes")
    n = plan.size
    outcomes = [o for o in DEFAULT_RATES if config.rates.get(o, 0) > 0]
    weights = np.array([config.rates[o] for o in outcomes], dtype=np.float64)
    cumulative = np.cumsum(weights / weights.sum())
    cumulative[-1] = 1.0
    picked = np.searchsorted(cumulative, rng.random(n), side="right")
    codes = np.array([CODE[o] for o in outcomes], dtype=np.int8)
    network = codes[np.minimum(picked, len(codes) - 1)]
    limit = MAX_LONG_SEGMENTS if config.long_sms else 1
    # A non-mobile cannot receive it; a text too long once its characters are replaced
    # cannot be sent (the check counts segments before replacement).
    network[~plan.mobile | (plan.segments > limit)] = CODE[Outcome.FAILED]
    u = rng.random(n)
    reply = np.full(n, NO_REPLY, dtype=np.int8)
    reply[u < config.stop_rate + config.mo_rate] = MO_REPLY
    reply[u < config.stop_rate] = STOP_REPLY
    reply[network != CODE[Outcome.DELIVERED]] = NO_REPLY
    delay = rng.exponential(config.reply_delay_mean.total_seconds(), n)
    text = np.where(
        reply == STOP_REPLY,
        rng.integers(0, len(STOP_SPELLINGS), n),
        rng.integers(0, len(MO_TEXTS), n),
    )
    return Draws(network, reply, delay, text)


def ack_operator_ids(seed: int, stem: str, n: int) -> pa.Array:
    """Operator message ids for the ACK (UUID-shaped, lower-case hex), reproducible."""
    raw = np.frombuffer(_rng(seed, stem, "ackoperator").bytes(16 * n), dtype=np.uint8)
    hex_digits = _HEX_PAIRS[raw].view(np.uint8).reshape(n, 32)
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    parts = [
        hex_digits[:, :8],
        dash,
        hex_digits[:, 8:12],
        dash,
        hex_digits[:, 12:16],
        dash,
        hex_digits[:, 16:20],
        dash,
        hex_digits[:, 20:],
    ]
    joined = np.ascontiguousarray(np.concatenate(parts, axis=1))
    offsets = pa.array(np.arange(0, 36 * n + 1, 36, dtype=np.int64))
    return pa.LargeStringArray.from_buffers(n, offsets.buffers()[1], pa.py_buffer(joined.tobytes()))


#: Byte value -> its two lower-case hex digits as one little-endian uint16 (one lookup per
#: byte instead of two: the ids of a million messages in ~0.1 s).
_HEX_PAIRS = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype="<u2")
