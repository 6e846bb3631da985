"""Runs on every audience row, during ``prepare``: the field rules of a SEND record.

They are applied to whole batches at once.

Every row ends in exactly one place: the valid rows or the rejects, with one reason code
(the first failing rule in :class:`~smsdrop.reasons.Reason` order). All rows are checked
before anything is reported, so a user sees every problem in one pass.

Batches are pyarrow Tables (:func:`check_batch`, :class:`Dedupe`), the preparation
pipeline's one internal type; :func:`validate` is the same check for pandas frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from smsdrop import fields
from smsdrop.arrays import unique
from smsdrop.audience_files import as_frame
from smsdrop.gsm import EncodingPolicy
from smsdrop.gsm_arrays import message_facts
from smsdrop.msisdn import MsisdnStatus
from smsdrop.msisdn.classification import classify_array
from smsdrop.msisdn.masking import mask_array
from smsdrop.optout_mention import missing_mention
from smsdrop.reasons import REASON_FIELD, Reason

#: The record fields' patterns (the rules are :mod:`smsdrop.fields`'). Full matches.
FIELD_PATTERNS: dict[str, str] = {
    "idremote": str(fields.IDREMOTE.pattern),
    "oadc": str(fields.SENDER.pattern),
}
#: A sender that reads as a French mobile number: operators block business SMS from it.
FRENCH_MOBILE_SENDER = r"(?:\+?33|0)[67][0-9]{8}"

#: Column layout of the rejects table.
REJECT_COLUMNS: tuple[str, ...] = ("row", "idremote", "msisdn", "reason", "field", "detail")


@dataclass(frozen=True)
class Rules:
    """Per-campaign options that change what a valid record is."""

    encoding_policy: EncodingPolicy = EncodingPolicy.REJECT
    long_sms: bool = False
    default_region: str = "FR"
    #: In a SEND file the provider wants the international format already (``check``).
    require_e164: bool = False
    #: The opt-out mention messages to French numbers must carry; None: not checked
    #: (transactional traffic, or no mention configured).
    optout_mention: str | None = None


@dataclass
class CheckedBatch:
    """The outcome of checking one batch, in Arrow.

    ``table`` keeps every row (normalised); ``ok`` says which passed. Filtering is left to
    the caller, which filters once more anyway (duplicates, opt-outs).
    """

    table: pa.Table  # idremote, msisdn (E.164), oadc, msg, country, encoding, segments, row
    ok: np.ndarray
    rejects: pa.Table  # REJECT_COLUMNS; msisdn masked
    warnings: list[str] = field(default_factory=list)


@dataclass
class Validated:
    """:class:`CheckedBatch` as pandas frames, for callers that hold frames (``check``)."""

    checked: pd.DataFrame  # idremote, msisdn (E.164), oadc, msg, country, encoding, segments, row
    ok: np.ndarray
    rejects: pd.DataFrame  # REJECT_COLUMNS; msisdn masked
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> pd.DataFrame:
        return self.checked[self.ok].reset_index(drop=True)


def validate(frame: pd.DataFrame, rules: Rules) -> Validated:
    """:func:`check_batch` on a frame (idremote, msisdn, oadc, msg, row), as frames."""
    columns = {name: _text(frame[name]) for name in ("idremote", "msisdn", "oadc", "msg")}
    columns["row"] = pa.array(frame["row"].to_numpy(dtype=np.int64))
    if "template_missing" in frame:
        columns["template_missing"] = pa.array(frame["template_missing"].to_numpy(bool))
    checked = check_batch(pa.table(columns), rules)
    return Validated(
        as_frame(checked.table), checked.ok, as_frame(checked.rejects), checked.warnings
    )


def check_batch(batch: pa.Table, rules: Rules) -> CheckedBatch:
    """Check ``batch`` (idremote, msisdn, oadc, msg, row) and split it into valid and rejects.

    ``row`` is the caller's reference to the source row (a record number from 1); an
    optional boolean ``template_missing`` marks rows whose message template lacked a value.
    The MSISDN is normalised to E.164, the message possibly transliterated. Duplicates and
    opt-outs are not decided here: they need campaign-wide state (see :class:`Dedupe`).
    """
    idremote, oadc = _text(batch["idremote"]), _text(batch["oadc"])
    raw, row = _text(batch["msisdn"]), batch["row"].combine_chunks().cast(pa.int64())
    numbers = classify_array(raw, default_region=rules.default_region)
    messages = message_facts(_text(batch["msg"]), rules.encoding_policy, rules.long_sms)
    e164 = _text(numbers.e164)
    message_code = _codes(_text(messages.reason))

    invalid = numbers.has(MsisdnStatus.INVALID)
    not_mobile = numbers.has(MsisdnStatus.NOT_MOBILE)
    e164_ok = _bools(pc.is_valid(e164))
    if rules.require_e164:  # a SEND file must hold the number exactly as E.164
        e164_ok &= _bools(pc.equal(e164, raw))
    failures = [
        (Reason.IDREMOTE_INVALID, ~_fullmatch(idremote, FIELD_PATTERNS["idremote"])),
        (Reason.MSISDN_INVALID, ~e164_ok | invalid),
        (Reason.MSISDN_NOT_MOBILE, not_mobile),
        (Reason.OADC_INVALID, ~_fullmatch_distinct(oadc, FIELD_PATTERNS["oadc"])),
    ]
    if "template_missing" in batch.column_names:
        missing = batch["template_missing"].combine_chunks()
        failures.append((Reason.MSG_TEMPLATE_FIELD, _bools(missing)))
    failures.append((None, message_code >= 0))
    code = first_failure(failures, message_code)
    final_msg, country = _text(messages.msg), _text(numbers.country)
    if rules.optout_mention:
        _reject_missing_mention(code, final_msg, country, rules.optout_mention)

    bad = code >= 0
    table = pa.table(
        {
            "idremote": idremote,
            "msisdn": e164,
            "oadc": oadc,
            "msg": final_msg,
            "country": country,
            "encoding": _text(messages.encoding),
            "segments": pa.array(messages.segments),
            "row": row,
        }
    )
    where = pa.array(bad)
    shown = pc.coalesce(e164, raw).filter(where)
    rejects = rejects_table(row.filter(where), idremote.filter(where), _masked(shown), code[bad])
    return CheckedBatch(table, ~bad, rejects, _sender_warnings(oadc))


def _reject_missing_mention(
    code: np.ndarray, messages: pa.Array, countries: pa.Array, mention: str
) -> None:
    """Mark ``MSG_NO_OPTOUT_MENTION`` on the rows still valid whose message (as it will be
    sent: rendered, perhaps transliterated) goes to a French number without ``mention``.

    Only the rows no other rule rejected are searched: a rejected row keeps its first reason
    and costs no regex.
    """
    still = np.flatnonzero(code < 0)
    if not len(still):
        return
    where = pa.array(still)
    lacking = _bools(missing_mention(messages.take(where), countries.take(where), mention))
    code[still[lacking]] = _CODE[Reason.MSG_NO_OPTOUT_MENTION.value]


#: Reason codes as small integers (their position), so per-row work stays in numpy.
REASONS: tuple[Reason, ...] = tuple(Reason)
_CODE = {reason.value: index for index, reason in enumerate(REASONS)}
_REASON_NAMES = pa.array([r.value for r in REASONS], pa.large_string())
_REASON_FIELDS = pa.array([REASON_FIELD[r] for r in REASONS], pa.large_string())


def first_failure(
    failures: list[tuple[Reason | None, np.ndarray]], message_code: np.ndarray | None = None
) -> np.ndarray:
    """Per row, the code of the first failed rule in order, or -1 when none failed.

    A ``None`` reason takes its code per row from ``message_code`` (the GSM check's).
    """
    code = np.full(len(failures[0][1]), -1, dtype=np.int8)
    for reason, failed in failures:
        hit = (code < 0) & failed
        if not hit.any():
            continue
        code[hit] = message_code[hit] if reason is None else _CODE[reason.value]
    return code


def rejects_table(
    row: pa.Array, idremote: pa.Array, masked: pa.Array, code: np.ndarray, detail: str = ""
) -> pa.Table:
    """A rejects table (:data:`REJECT_COLUMNS`) from reason codes; the MSISDN column must
    already be masked."""
    codes = pa.array(code, pa.int8())
    return pa.table(
        {
            "row": row.cast(pa.int64()),
            "idremote": idremote,
            "msisdn": masked,
            "reason": _REASON_NAMES.take(codes),
            "field": _REASON_FIELDS.take(codes),
            "detail": pa.repeat(pa.scalar(detail, pa.large_string()), len(code)),
        }
    )


class Dedupe:
    """Campaign-wide state: numbers already kept, numbers that opted out, numbers at the
    frequency cap.

    E.164 numbers have at most 15 digits, so each is held as one int64 in a sorted array:
    ten million recipients cost 80 MB, not the gigabytes a set of strings would. ``capped``
    are int64 numbers already at the cap (the warehouse's ``capped_numbers``): they are
    anti-joined exactly as the opt-outs are.
    """

    def __init__(
        self, opted_out: pd.Series | None = None, capped: np.ndarray | None = None
    ) -> None:
        self._opted_out = unique(to_int64(opted_out)) if opted_out is not None else None
        self._capped = unique(np.asarray(capped, dtype=np.int64)) if capped is not None else None
        self._seen = np.empty(0, dtype=np.int64)

    def split(self, valid: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Keep first occurrences of numbers not opted out; reject the rest (in that order)."""
        table = pa.table(
            {
                "msisdn": _text(valid["msisdn"]),
                "idremote": _text(valid["idremote"]),
                "row": pa.array(valid["row"].to_numpy(dtype=np.int64)),
            }
        )
        keep, rejects = self.select(table, np.ones(len(valid), dtype=bool))
        return valid[keep].reset_index(drop=True), as_frame(rejects)

    def select(self, checked: pa.Table, ok: np.ndarray) -> tuple[np.ndarray, pa.Table]:
        """Among the ``ok`` rows of ``checked``, which to keep; rejects for the others."""
        candidates = np.flatnonzero(ok)
        msisdn = _text(checked["msisdn"])
        numbers = to_int64(msisdn.take(pa.array(candidates)))
        # Everything is decided on the batch sorted once (stable: among equal numbers the
        # first row comes first), looked up in sorted order (cache-friendly).
        order = np.argsort(numbers, kind="stable")
        ordered = numbers[order]
        opted = np.zeros(len(numbers), dtype=bool)
        if self._opted_out is not None:
            opted[order] = _in_sorted(ordered, self._opted_out)[0]
        capped = np.zeros(len(numbers), dtype=bool)
        if self._capped is not None:
            capped[order] = _in_sorted(ordered, self._capped)[0]
        in_seen, where = _in_sorted(ordered, self._seen)
        repeat = np.zeros(len(numbers), dtype=bool)
        repeat[1:] = ordered[1:] == ordered[:-1]
        duplicate = np.empty(len(numbers), dtype=bool)
        duplicate[order] = in_seen | repeat
        code = first_failure(
            [
                (Reason.OPTED_OUT, opted),
                (Reason.FREQUENCY_CAPPED, capped),
                (Reason.MSISDN_DUPLICATE, duplicate),
            ]
        )
        kept = code < 0
        # Merge the new numbers (already sorted) into the sorted array: linear per batch.
        fresh = kept[order]
        self._seen = np.insert(self._seen, where[fresh], ordered[fresh])
        dropped = pa.array(candidates[~kept])
        rejects = rejects_table(
            checked["row"].combine_chunks().take(dropped),
            _text(checked["idremote"]).take(dropped),
            _masked(msisdn.take(dropped)),
            code[~kept],
        )
        keep = np.zeros(checked.num_rows, dtype=bool)
        keep[candidates[kept]] = True
        return keep, rejects

    @property
    def kept(self) -> int:
        return len(self._seen)


def to_int64(e164: pd.Series | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """E.164 strings (``+`` and up to 15 digits) as int64 numbers; -1 for anything else."""
    digits = pc.utf8_slice_codeunits(_text(e164), 1)
    try:
        return pc.fill_null(pc.cast(digits, pa.int64()), -1).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not all digits: the slow way
        numbers = pd.to_numeric(pd.Series(digits.to_pandas()), errors="coerce")
        return numbers.fillna(-1).astype("int64").to_numpy()


def _in_sorted(ordered: np.ndarray, sorted_set: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted ``ordered``: which are in ``sorted_set``, and where each would go in it."""
    where = np.searchsorted(sorted_set, ordered)
    if not len(sorted_set):
        return np.zeros(len(ordered), dtype=bool), where
    found = sorted_set[where.clip(0, len(sorted_set) - 1)] == ordered
    return found, where


def _text(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """Values as one large_string array, whatever the source column type was."""
    if isinstance(values, pd.Series):
        values = pa.array(values.astype("string[pyarrow]"))
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.large_string())


def _masked(e164: pa.Array) -> pa.Array:
    """:func:`smsdrop.msisdn.mask` on an Arrow array."""
    return _text(mask_array(e164))


def _codes(reason: pa.Array) -> np.ndarray:
    """Reason values (null: none) as their codes (-1: none)."""
    index = pc.index_in(reason, value_set=_REASON_NAMES)
    return pc.fill_null(index, -1).to_numpy().astype(np.int8)


def _bools(values: pa.Array) -> np.ndarray:
    """A boolean array as numpy, null as False."""
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def _fullmatch(values: pa.Array, pattern: str) -> np.ndarray:
    """Whole-value regex match (RE2's ``$`` is the end of the value, never before a
    trailing newline as Python's is)."""
    return _bools(pc.match_substring_regex(values, f"^(?:{pattern})$"))


def _fullmatch_distinct(values: pa.Array, pattern: str) -> np.ndarray:
    """:func:`_fullmatch` computed once per distinct value: a campaign has few senders."""
    encoded = values.dictionary_encode()
    matched = np.append(_fullmatch(encoded.dictionary, pattern), False)
    return matched[pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()]


def _sender_warnings(oadc: pa.Array) -> list[str]:
    senders = pc.unique(oadc.drop_null())
    mobile = senders.filter(pa.array(_fullmatch(senders, FRENCH_MOBILE_SENDER)))
    return [
        f"sender {s[:4]}… looks like a French mobile number: French operators block "
        "business SMS sent from one"
        for s in mobile.to_pylist()
    ]
