"""Runs on every audience row, during ``prepare``: the field rules of a SEND record.

They are applied to whole frames at once.

Every row ends in exactly one place: the valid frame or the rejects, with one reason code
(the first failing rule in :class:`~smsdrop.reasons.Reason` order). All rows are checked
before anything is reported, so a user sees every problem in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from smsdrop.gsm import EncodingPolicy, check_messages
from smsdrop.msisdn import MsisdnStatus, classify, mask
from smsdrop.reasons import REASON_FIELD, Reason

#: Field patterns from the spec, as data. Full matches over ASCII only.
FIELD_PATTERNS: dict[str, str] = {
    "idremote": r"[A-Za-z0-9]{1,40}",
    "oadc": r"[A-Za-z0-9]{1,11}",
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


@dataclass
class Validated:
    """The outcome of validating one batch.

    ``checked`` keeps every row (normalised); ``ok`` says which passed. Filtering is left to
    the caller, which usually filters once more anyway (duplicates, opt-outs).
    """

    checked: pd.DataFrame  # idremote, msisdn (E.164), oadc, msg, country, encoding, segments, row
    ok: np.ndarray
    rejects: pd.DataFrame  # REJECT_COLUMNS; msisdn masked
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> pd.DataFrame:
        return self.checked[self.ok].reset_index(drop=True)


def validate(frame: pd.DataFrame, rules: Rules) -> Validated:
    """Check ``frame`` (idremote, msisdn, oadc, msg, row) and split it into valid and rejects.

    ``row`` is the caller's reference to the source row (a record number from 1); an
    optional boolean ``template_missing`` marks rows whose message template lacked a value.
    The MSISDN is normalised to E.164, the message possibly transliterated. Duplicates and
    opt-outs are not decided here: they need campaign-wide state (see :class:`Dedupe`).
    """
    idremote, oadc, raw = _text(frame["idremote"]), _text(frame["oadc"]), _text(frame["msisdn"])
    numbers = classify(raw, default_region=rules.default_region)
    messages = check_messages(_text(frame["msg"]), rules.encoding_policy, rules.long_sms)

    status = numbers["status"].to_numpy()
    e164_ok = numbers["e164"].notna().to_numpy()
    if rules.require_e164:  # a SEND file must hold the number exactly as E.164
        e164_ok = e164_ok & (numbers["e164"] == raw).fillna(False).to_numpy(dtype=bool)
    failures = [
        (Reason.IDREMOTE_INVALID, ~_fullmatch(idremote, FIELD_PATTERNS["idremote"])),
        (Reason.MSISDN_INVALID, ~e164_ok | (status == MsisdnStatus.INVALID)),
        (Reason.MSISDN_NOT_MOBILE, status == MsisdnStatus.NOT_MOBILE),
        (Reason.OADC_INVALID, ~_fullmatch_distinct(oadc, FIELD_PATTERNS["oadc"])),
    ]
    if "template_missing" in frame:
        failures.append((Reason.MSG_TEMPLATE_FIELD, frame["template_missing"].to_numpy(bool)))
    failures.append((None, messages["reason"].notna().to_numpy()))
    code = first_failure(failures, messages["reason"])

    bad = code >= 0
    checked = pd.DataFrame(
        {
            "idremote": idremote,
            "msisdn": numbers["e164"],
            "oadc": oadc,
            "msg": messages["msg"],
            "country": numbers["country"],
            "encoding": messages["encoding"],
            "segments": messages["segments"],
            "row": frame["row"],
        }
    ).reset_index(drop=True)
    shown = numbers["e164"][bad].fillna(raw[bad])
    rejects = rejects_frame(frame["row"][bad], idremote[bad], mask(shown), code[bad])
    return Validated(checked, ~bad, rejects, _sender_warnings(oadc))


#: Reason codes as small integers (their position), so per-row work stays in numpy.
REASONS: tuple[Reason, ...] = tuple(Reason)
_CODE = {reason.value: index for index, reason in enumerate(REASONS)}


def first_failure(
    failures: list[tuple[Reason | None, np.ndarray]], message_reason: pd.Series | None = None
) -> np.ndarray:
    """Per row, the code of the first failed rule in order, or -1 when none failed.

    A ``None`` reason takes its code per row from ``message_reason`` (the GSM check's).
    """
    code = np.full(len(failures[0][1]), -1, dtype=np.int8)
    for reason, failed in failures:
        hit = (code < 0) & failed
        if not hit.any():
            continue
        if reason is None:
            code[hit] = message_reason[hit].map(_CODE).to_numpy(dtype=np.int8)
        else:
            code[hit] = _CODE[reason.value]
    return code


def rejects_frame(
    row: pd.Series, idremote: pd.Series, masked: pd.Series, code: np.ndarray, detail: str = ""
) -> pd.DataFrame:
    """A rejects table from reason codes; the MSISDN column must already be masked."""
    reason = pd.Categorical.from_codes(code, categories=[r.value for r in REASONS])
    field_of = {r.value: REASON_FIELD[r] for r in REASONS}
    return pd.DataFrame(
        {
            "row": row.to_numpy(dtype=np.int64),
            "idremote": idremote.to_numpy(),
            "msisdn": masked.to_numpy(),
            "reason": pd.Series(reason).astype("string[pyarrow]").to_numpy(),
            "field": pd.Series(reason.map(field_of)).astype("string[pyarrow]").to_numpy(),
            "detail": detail,
        },
        columns=list(REJECT_COLUMNS),
    ).astype({"reason": "string[pyarrow]", "field": "string[pyarrow]"})


class Dedupe:
    """Campaign-wide state: numbers already kept and numbers that opted out.

    E.164 numbers have at most 15 digits, so each is held as one int64 in a sorted array:
    ten million recipients cost 80 MB, not the gigabytes a set of strings would.
    """

    def __init__(self, opted_out: pd.Series | None = None) -> None:
        self._opted_out = np.unique(to_int64(opted_out)) if opted_out is not None else None
        self._seen = np.empty(0, dtype=np.int64)

    def split(self, valid: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Keep first occurrences of numbers not opted out; reject the rest (in that order)."""
        keep, rejects = self.select(valid, np.ones(len(valid), dtype=bool))
        return valid[keep].reset_index(drop=True), rejects

    def select(self, checked: pd.DataFrame, ok: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
        """Among the ``ok`` rows of ``checked``, which to keep; rejects for the others."""
        candidates = np.flatnonzero(ok)
        numbers = to_int64(checked["msisdn"].take(candidates))
        # Everything is decided on the batch sorted once (stable: among equal numbers the
        # first row comes first), looked up in sorted order (cache-friendly).
        order = np.argsort(numbers, kind="stable")
        ordered = numbers[order]
        opted = np.zeros(len(numbers), dtype=bool)
        if self._opted_out is not None:
            opted[order] = _in_sorted(ordered, self._opted_out)[0]
        in_seen, where = _in_sorted(ordered, self._seen)
        repeat = np.zeros(len(numbers), dtype=bool)
        repeat[1:] = ordered[1:] == ordered[:-1]
        duplicate = np.empty(len(numbers), dtype=bool)
        duplicate[order] = in_seen | repeat
        code = first_failure([(Reason.OPTED_OUT, opted), (Reason.MSISDN_DUPLICATE, duplicate)])
        kept = code < 0
        # Merge the new numbers (already sorted) into the sorted array: linear per batch.
        fresh = kept[order]
        self._seen = np.insert(self._seen, where[fresh], ordered[fresh])
        dropped = candidates[~kept]
        rejects = rejects_frame(
            checked["row"].take(dropped),
            checked["idremote"].take(dropped),
            mask(checked["msisdn"].take(dropped)),
            code[~kept],
        )
        keep = np.zeros(len(checked), dtype=bool)
        keep[candidates[kept]] = True
        return keep, rejects

    @property
    def kept(self) -> int:
        return len(self._seen)


def to_int64(e164: pd.Series) -> np.ndarray:
    """E.164 strings (``+`` and up to 15 digits) as int64 numbers; -1 for anything else."""
    digits = pc.utf8_slice_codeunits(pa.array(_text(e164), pa.large_string()), 1)
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


def _text(values: pd.Series) -> pd.Series:
    """Values as pyarrow-backed strings, whatever the source column type was."""
    return values.astype("string[pyarrow]")


def _fullmatch(values: pd.Series, pattern: str) -> np.ndarray:
    """Whole-value regex match (``$`` would accept a trailing newline; this does not)."""
    return values.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)


def _fullmatch_distinct(values: pd.Series, pattern: str) -> np.ndarray:
    """:func:`_fullmatch` computed once per distinct value: a campaign has few senders."""
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    matched = np.append(_fullmatch(pd.Series(distinct, dtype="string[pyarrow]"), pattern), False)
    return matched[codes]


def _sender_warnings(oadc: pd.Series) -> list[str]:
    senders = pd.Series(oadc.dropna().unique(), dtype="string[pyarrow]")
    mobile = senders[_fullmatch(senders, FRENCH_MOBILE_SENDER)]
    return [
        f"sender {s[:4]}… looks like a French mobile number: French operators block "
        "business SMS sent from one"
        for s in mobile
    ]
