"""Campaign preparation without Airflow: audience in, SEND files, rejects and a summary out.

The audience streams through in batches (memory follows the batch, not the audience):
render the message template, validate and normalise (:mod:`smsdrop.record_rules`), drop
opted-out and duplicate numbers campaign-wide, and write ≤1,000,000-record SEND files.
Every audience row ends in a SEND file or in the rejects with a reason code: ``rejects.csv``
and any other :class:`RejectsSink` given (the DAG's: the warehouse). A batch stays a
pyarrow Table from the audience file (:mod:`smsdrop.audience_files`) to the SEND files.
"""

from __future__ import annotations

import json
import string
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from smsdrop import naming, windows
from smsdrop.account import Account
from smsdrop.audience_files import DEFAULT_BATCH, read_audience, read_audience_tables
from smsdrop.csvfile import MAX_RECORDS, SEND_FIELDS, FileManifest, SendFileWriter, open_private
from smsdrop.errors import InputError, printable
from smsdrop.frequency import FrequencyCap
from smsdrop.gsm import EncodingPolicy
from smsdrop.msisdn import SUPPORTED_REGIONS
from smsdrop.optout_files import OptOutList, load_optouts, read_optouts
from smsdrop.pricing import BudgetExceeded, PriceList, SegmentTally, budget_problem
from smsdrop.record_rules import REJECT_COLUMNS, Dedupe, check_batch

if TYPE_CHECKING:
    from smsdrop.spec import CampaignSpec

REJECTS_FILE = "rejects.csv"
SUMMARY_FILE = "summary.json"
#: Larger batches only cost memory; this bounds it.
MAX_BATCH = 10_000_000
#: How far ahead a send may be planned: a STOP received until then could not stop it.
MAX_AHEAD = timedelta(days=366)


@dataclass
class Summary:
    """A campaign's preparation in figures: what a user checks before sending."""

    campaign_id: str
    service_id: str
    send_at: str
    requested_send_at: str
    send_at_moved: bool = False  # the requested time was outside a destination's window
    recipients: int = 0
    valid: int = 0
    rejected: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    opted_out: int = 0
    encodings: dict[str, int] = field(default_factory=dict)
    segments: int = 0
    countries: dict[str, int] = field(default_factory=dict)
    files: list[dict[str, object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: With an opt-out file: its entries, numbers and entries that are not numbers.
    optout_file: dict[str, object] | None = None
    #: Rows rejected FREQUENCY_CAPPED (also in ``rejects_by_reason``).
    frequency_capped: int = 0
    #: The estimate of the rows kept (``Cost.as_dict()``), when a price list was given.
    cost: dict[str, object] | None = None
    #: The contract's result on the SEND files (``ContractResult.as_dict()``: counts), when
    #: it was checked with the preparation (``campaign.prepare_staged(contract=True)``).
    contract: dict[str, object] | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# --- message template -------------------------------------------------------------------


def template_fields(template: str) -> list[str]:
    """The ``{column}`` placeholders of a template; ``{{`` and ``}}`` stand for braces."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        raise InputError(f"message template: {error}", field="MSG") from None
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise InputError(
                f"message template placeholder {{{name}}} must be a plain column name",
                field="MSG",
            )
        names.append(name)
    return names


def render(template: str, batch: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """:func:`render_messages` on a frame, as Series with the frame's index."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    table = pa.table({name: pa.array(batch[name], pa.large_string()) for name in names})
    message, missing = render_messages(template, table)
    return (
        pd.Series(message, index=batch.index, dtype="string[pyarrow]"),
        pd.Series(missing, index=batch.index),
    )


def render_messages(template: str, batch: pa.Table) -> tuple[pa.Array, np.ndarray]:
    """The message per row, and which rows lack a placeholder value (vectorised)."""
    empty = pa.scalar("", pa.large_string())
    pieces: list[pa.Array | pa.Scalar] = []
    missing = np.zeros(batch.num_rows, dtype=bool)
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(pa.scalar(literal, pa.large_string()))
        if name is not None:
            values = batch[name].combine_chunks().cast(pa.large_string())
            blank = pc.equal(pc.utf8_trim_whitespace(values), empty)
            missing |= pc.fill_null(blank, True).to_numpy(zero_copy_only=False)
            pieces.append(pc.fill_null(values, empty))
    if not any(isinstance(piece, pa.Array) for piece in pieces):
        pieces.append(pa.repeat(empty, batch.num_rows))
    return pc.binary_join_element_wise(*pieces, empty), missing


# --- where rejects go -------------------------------------------------------------------


class RejectsSink(Protocol):
    """Where the rejects go, batch by batch as they are found (:data:`REJECT_COLUMNS`,
    the MSISDN masked); :meth:`close` is called once the preparation succeeded."""

    def write(self, rejects: pa.Table) -> None: ...

    def close(self) -> None: ...


class FileCheck(Protocol):
    """What looks at each SEND file once it is whole, under its temporary name, while the
    next ones are prepared (:class:`smsdrop.contract_process.ContractProcess`)."""

    def submit(self, path: Path) -> None: ...

    def files_done(self) -> None:
        """Return once every file submitted is checked: the files are renamed next."""


class CsvRejects:
    """``rejects.csv``: a header line, then each batch as pyarrow writes CSV (0600)."""

    def __init__(self, path: Path) -> None:
        self._out = open_private(path)
        self._out.write((",".join(REJECT_COLUMNS) + "\n").encode())

    def write(self, rejects: pa.Table) -> None:
        if rejects.num_rows:
            pacsv.write_csv(rejects, self._out, pacsv.WriteOptions(include_header=False))

    def close(self) -> None:
        self._out.close()


# --- the send slot ----------------------------------------------------------------------


def first_allowed_slot(
    requested: datetime, countries: list[str], window_end: str | None
) -> datetime:
    """The first minute at or after ``requested`` allowed in every destination's window.

    The provider queues (outside hours) or rejects (Sundays, holidays) a marketing SMS due
    outside its window, so the name must carry a time it would send at once.
    """
    slot = requested.replace(second=0, microsecond=0)
    rules = {c: send_window(c, window_end) for c in sorted(set(countries))}
    for _ in range(100):  # each pass can only move forward; windows agree within a few
        moved = slot
        for country, window in rules.items():
            moved = windows.next_allowed(moved, country, window)
        if moved == slot:
            return slot.astimezone(naming.PARIS)
        slot = moved
    raise InputError("no send slot fits every destination country's window")


def send_window(country: str, window_end: str | None) -> windows.SendWindow | None:
    """The country's window narrowed to ``window_end`` ("HH:MM"); None: its own rules.

    An end can only narrow the legal window, never widen it (23:00 is refused for France).
    """
    if window_end is None:
        return None
    try:
        return windows.narrowed(country, clock_time.fromisoformat(window_end))
    except ValueError as error:
        raise InputError(str(error), field="window_end") from None


# --- the whole preparation --------------------------------------------------------------


def prepare(
    audience: Path,
    campaign: CampaignSpec,
    out_dir: Path,
    *,
    optouts: pd.Series | OptOutList | None = None,
    batch_size: int = DEFAULT_BATCH,
    now: datetime | None = None,
    timings: dict[str, float] | None = None,
    max_records: int = MAX_RECORDS,
    file_encoding: str = "utf-8",
    line_end: str = "crlf",
    rejects_to: Sequence[RejectsSink] = (),
    account: Account | None = None,
    prices: PriceList | None = None,
    capped: np.ndarray | None = None,
    check: FileCheck | None = None,
) -> Summary:
    """Prepare a campaign into ``out_dir``: SEND files, ``rejects.csv`` and ``summary.json``.

    ``rejects_to`` are sinks that get the rejects too, batch by batch, and are closed once
    the preparation succeeded (``rejects.csv`` gets them all the same).

    ``max_records``, ``file_encoding`` and ``line_end`` shape the SEND files (an account's
    or a test's, not the campaign's). ``timings``, when given, receives the seconds spent
    per stage (for the benchmarks).

    ``account`` is the provider account (what it allows, its kind of traffic, its opt-out
    mention); ``prices`` the price list of the estimate (none: no estimate, and no
    ``max_cost``); ``capped`` the numbers already at the campaign's frequency cap, as
    sorted int64 (the caller asks the warehouse: the history is there, not here). Only a
    marketing campaign (:meth:`CampaignSpec.marketing`) gets the French window, the mention
    check and the cap. Over ``max_cost``, every SEND file is removed and
    :class:`~smsdrop.pricing.BudgetExceeded` raised: nothing of the campaign is left to send.
    ``check`` gets each SEND file as soon as it is whole, and is waited for before the files
    get their names (the contract, checked while the next files are prepared).
    """
    clock = Stopwatch(timings if timings is not None else {})
    # Refuse a bad SERVICEID or CAMPAIGNID before reading a single audience row.
    naming.build_name(naming.FileKind.SEND, campaign.service_id, _utcnow(), campaign.campaign_id)
    columns = campaign.columns()
    if str(campaign.default_region).upper() not in SUPPORTED_REGIONS:
        raise InputError(
            f"unknown region {printable(campaign.default_region)} (an ISO 3166 code, e.g. FR)",
            field="default_region",
        )
    if not 1 <= batch_size <= MAX_BATCH:
        raise InputError(f"the batch size must be 1..{MAX_BATCH:,}, not {batch_size}")
    start_at = now or _utcnow()
    requested = campaign.send_time() or start_at
    if requested.tzinfo is None or start_at.tzinfo is None:
        raise InputError("the send time needs a time zone (e.g. 2026-12-01T10:00+01:00)")
    try:
        ahead = requested - start_at
    except OverflowError:  # year 9999 at a negative offset is after year 9999 in UTC
        raise InputError(f"the send time {requested.isoformat()} is out of range") from None
    if ahead > MAX_AHEAD:
        raise InputError(
            f"the send time {requested.isoformat()} is more than {MAX_AHEAD.days} days ahead: "
            "opt-outs received until then could not stop it",
            field="send_at",
        )
    plan_from = max(requested, start_at)  # a past time plans from now, never in the past
    if campaign.narrowed_end is not None:
        send_window("FR", campaign.narrowed_end)  # refuse a widening end before any work
    if account is not None:
        for name, why in account.campaign_problems(
            long_sms=campaign.long_sms,
            ucs2=campaign.encoding_policy == EncodingPolicy.UCS2.value,
        ):
            raise InputError(why, field=name)
    campaign.mention_problem()
    if campaign.frequency_cap:
        FrequencyCap.parse(campaign.frequency_cap)  # a typo is refused, history or not
    max_cost = campaign.cost_cap()
    if max_cost is not None and prices is None:
        raise InputError("a cost cap needs a price list to estimate against", field="max_cost")
    marketing = campaign.marketing(account)
    mention = campaign.mention(account) if marketing else None
    if isinstance(optouts, OptOutList):
        optout_list, optouts = optouts, optouts.numbers
    else:
        optout_list = None

    if _would_replace(audience, out_dir):
        raise InputError(
            "the audience is a file prepare writes or clears in the output folder: "
            "move it or choose another folder",
            file=str(audience),
        )
    prepare_folder(out_dir)
    writer = SendFileWriter(
        out_dir,
        cap=max_records,
        encoding=file_encoding,
        line_end=line_end,
    )
    dedupe = Dedupe(optouts, capped if marketing else None)
    rules = replace(campaign.rules(), optout_mention=mention)
    tally = SegmentTally()
    reasons: Counter[str] = Counter()
    encodings: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    totals = {"recipients": 0, "segments": 0}
    warnings: set[str] = set()
    if marketing and mention is None:
        warnings.add(
            "no opt-out mention configured (campaign optout_mention, the account's "
            "optout_mention or optout_short_code): messages to French numbers were not "
            "checked for STOP au 36xxx"
        )
    sender = pa.scalar(campaign.sender, pa.large_string())
    csv_rejects = CsvRejects(out_dir / REJECTS_FILE)
    sinks = (csv_rejects, *rejects_to)
    try:
        batches = read_audience_tables(audience, columns, batch_size)
        while True:
            with clock("read"):
                batch = next(batches, None)
            if batch is None:
                break
            start = totals["recipients"]
            totals["recipients"] += batch.num_rows
            with clock("render"):
                message, missing = render_messages(campaign.message, batch)
            frame = pa.table(
                {
                    "idremote": batch["idremote"],
                    "msisdn": batch["msisdn"],
                    "oadc": pa.repeat(sender, batch.num_rows),
                    "msg": message,
                    "row": np.arange(start + 1, start + batch.num_rows + 1, dtype=np.int64),
                    "template_missing": missing,
                }
            )
            with clock("validate"):
                checked = check_batch(frame, rules)
            warnings.update(checked.warnings)
            with clock("dedupe"):
                keep, dropped = dedupe.select(checked.table, checked.ok)
            with clock("rejects"):
                for rejects in (checked.rejects, dropped):
                    _count(rejects.column("reason"), reasons)
                    for sink in sinks:
                        sink.write(rejects)
            with clock("write"):
                kept = checked.table.filter(pa.array(keep))
                writer.write(kept.select(list(SEND_FIELDS)))
                for path in writer.completed() if check is not None else ():
                    check.submit(path)
                    # the memory the file took goes back: the check runs beside us
                    pa.default_memory_pool().release_unused()
            with clock("rejects"):
                _count(kept.column("encoding"), encodings)
                _count(kept.column("country"), countries)
                totals["segments"] += pc.sum(kept.column("segments")).as_py() or 0
                if prices is not None:
                    tally.add(kept["country"], kept["encoding"], kept["segments"])
        csv_rejects.close()
        cost = prices.cost(tally) if prices is not None else None
        problem = budget_problem(cost, max_cost) if cost is not None else None
        if problem and campaign.dry_run:  # a dry run sends nothing: it shows the stop
            warnings.add(f"budget stop (dry run): {problem}")
        elif problem:
            raise BudgetExceeded(problem, field="max_cost")
        if marketing:
            slot = first_allowed_slot(plan_from, list(countries), campaign.narrowed_end)
        else:  # transactional traffic: no marketing window
            slot = plan_from.replace(second=0, microsecond=0).astimezone(naming.PARIS)
        ids = {}

        def name_for(index: int, count: int) -> str:
            if count not in ids:
                ids[count] = naming.chunk_campaign_ids(campaign.campaign_id, count)
            return naming.build_name(
                naming.FileKind.SEND, campaign.service_id, slot, ids[count][index]
            ).name

        with clock("write"):
            parts = writer.close_parts()
        if check is not None:
            for path in parts:
                check.submit(path)
            with clock("contract"):
                check.files_done()
        with clock("write"):
            manifests: list[FileManifest] = writer.finish(name_for)
    except BaseException as error:
        csv_rejects.close()
        writer.abort()
        if isinstance(error, BudgetExceeded):  # the campaign stops whole: nothing left of it
            (out_dir / REJECTS_FILE).unlink(missing_ok=True)
        raise

    summary = Summary(
        campaign_id=campaign.campaign_id,
        service_id=campaign.service_id,
        send_at=slot.isoformat(),
        requested_send_at=requested.isoformat(),
        send_at_moved=slot != requested.replace(second=0, microsecond=0),
        recipients=totals["recipients"],
        valid=dedupe.kept,
        rejected=sum(reasons.values()),
        rejects_by_reason=dict(sorted(reasons.items())),
        opted_out=reasons.get("OPTED_OUT", 0),
        encodings=dict(sorted(encodings.items())),
        segments=totals["segments"],
        countries=dict(sorted(countries.items())),
        files=[m.as_dict() for m in manifests],
        warnings=sorted(warnings),
        optout_file=optout_list.report() if optout_list is not None else None,
        frequency_capped=reasons.get("FREQUENCY_CAPPED", 0),
        cost=cost.as_dict() if cost is not None else None,
    )
    if optout_list is not None and optout_list.warning():
        summary.warnings.append(optout_list.warning() or "")
    if summary.recipients != summary.valid + summary.rejected:  # the promise, checked
        raise AssertionError("rows lost in preparation")
    with open_private(out_dir / SUMMARY_FILE) as handle:
        handle.write((json.dumps(summary.as_dict(), indent=2) + "\n").encode())
    for sink in rejects_to:
        sink.close()
    return summary


def _count(values: pa.ChunkedArray, counter: Counter[str]) -> None:
    """Add each value's number of rows to ``counter``."""
    counter.update({c["values"]: c["counts"] for c in pc.value_counts(values).to_pylist()})


#: Names ``prepare`` writes in its output folder (and so may remove there).
OUR_FILES = (REJECTS_FILE, SUMMARY_FILE)


def prepare_folder(out_dir: Path) -> None:
    """Create ``out_dir`` (0700: personal data) or clear what an earlier preparation left.

    SEND files of an earlier run must never sit next to the new ones (an uploader would
    send both). A folder holding ``rejects.csv``, ``summary.json`` or unfinished parts is
    ours: its SEND files are removed. SEND files in a folder without those were not
    written by ``prepare``: refused rather than deleted.
    """
    if not out_dir.exists():
        missing = [p for p in (out_dir, *out_dir.parents) if not p.exists()]
        out_dir.mkdir(parents=True, mode=0o700)
        for created in missing:
            created.chmod(0o700)
        return
    if not out_dir.is_dir():
        raise InputError("the output folder is a file", file=str(out_dir))
    sends = [p for p in out_dir.iterdir() if _is_send_file(p.name)]
    parts = list(out_dir.glob(".part-*.partial"))
    ours = parts or any((out_dir / name).exists() for name in OUR_FILES)
    if sends and not ours:
        raise InputError(
            f"the output folder holds {len(sends)} SEND file(s) that smsdrop prepare did not "
            "write: choose an empty folder or remove them",
            file=str(out_dir),
        )
    for path in (*sends, *parts, *(out_dir / name for name in OUR_FILES)):
        path.unlink(missing_ok=True)


def _would_replace(path: Path, out_dir: Path) -> bool:
    """Whether ``path`` is one of the names :func:`prepare_folder` clears in ``out_dir``."""
    try:
        same = path.resolve().parent == out_dir.resolve()
    except OSError:
        return False
    name = path.name
    return same and (name in OUR_FILES or _is_send_file(name) or name.endswith(".partial"))


def _is_send_file(name: str) -> bool:
    try:
        return naming.parse_name(name).kind is naming.FileKind.SEND
    except InputError:
        return False


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Stopwatch:
    """Adds the seconds spent in each ``with clock(stage):`` block to a dict."""

    def __init__(self, totals: dict[str, float]) -> None:
        self.totals = totals

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals[stage] = self.totals.get(stage, 0.0) + time.perf_counter() - start


__all__ = [
    "CsvRejects",
    "OptOutList",
    "RejectsSink",
    "Summary",
    "first_allowed_slot",
    "load_optouts",
    "prepare",
    "read_audience",
    "read_optouts",
    "render",
    "send_window",
    "template_fields",
]
