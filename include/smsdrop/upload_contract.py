"""Runs on the written SEND files, before their upload: beside the DAG's ``prepare`` task,
each file as soon as it is written (:mod:`smsdrop.contract_process`).

The data contract on what is about to be sent, checked with great-expectations.

Preparation already enforces every rule; the contract is a second, independent look at
the SEND files themselves, just before they are uploaded: if preparation had a bug, or an
opt-out arrived while the campaign was being prepared, the contract stops the campaign
before anything reaches the provider. Rules are data (:func:`expectations`).

Each file is streamed in batches of at most :data:`BATCH_ROWS` records, and each batch
is one run of the same great-expectations validation (built once): memory follows a batch,
not a file. Counts are summed per file and expectation. A batch only sees itself, so
uniqueness is also checked exactly, on int64 numbers, within each file and across files
(:func:`check_files` says which check found a repeat). The result keeps counts only:
great-expectations is asked for no unexpected values, which would be phone numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from smsdrop.csvfile import SEND_FIELDS, parse_options, read_options, text_options
from smsdrop.errors import InputError
from smsdrop.gsm import MAX_LONG_SEGMENTS, EncodingPolicy
from smsdrop.gsm_arrays import message_facts
from smsdrop.record_rules import FIELD_PATTERNS, Rules, to_int64

#: E.164 as the provider wants it in a SEND file.
E164 = r"^\+[1-9][0-9]{6,14}$"
#: The suite parameter that holds a file's opted-out numbers.
OPTOUTS_PARAMETER = "optouts"
#: Records per great-expectations run. A run costs ~0.06 s whatever its size (its metric
#: graph, its result), so 50,000-row batches took twice as long; 500,000 and 1,000,000
#: were no faster than 250,000 and held more (docs/PERFORMANCE.md).
BATCH_ROWS = 250_000
#: Bytes the CSV reader parses at a time (~10,000 records): batches are cut from these. The
#: streaming reader reads blocks ahead: 4 MiB ones held ~60 MB more, for no speed.
READ_BLOCK = 1 << 20
#: great-expectations' answer shape: counts, and no unexpected values (phone numbers).
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}


@dataclass
class ContractResult:
    """Per expectation: its type, column, success and counts (no values)."""

    success: bool = True
    files: int = 0
    rows: int = 0
    expectations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [e for e in self.expectations if not e["success"]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe_failures(self) -> str:
        return "; ".join(
            f"{e['file']}: {e['expectation']}({e['column']}) failed for "
            f"{e['unexpected_count']} of {e['element_count']} rows"
            for e in self.failures
        )


def expectations(rules: Rules) -> list[tuple[str, dict[str, Any]]]:
    """The contract as data: (great-expectations class name, its arguments). The opt-outs
    are the suite parameter :data:`OPTOUTS_PARAMETER`, given per batch's run."""
    segments = MAX_LONG_SEGMENTS if rules.long_sms else 1
    value_set = {"$PARAMETER": OPTOUTS_PARAMETER}
    return [
        ("ExpectColumnValuesToNotBeNull", {"column": "msisdn"}),
        ("ExpectColumnValuesToMatchRegex", {"column": "msisdn", "regex": E164}),
        ("ExpectColumnValuesToBeUnique", {"column": "msisdn"}),
        ("ExpectColumnValuesToNotBeInSet", {"column": "msisdn", "value_set": value_set}),
        ("ExpectColumnValuesToMatchRegex", {"column": "idremote", "regex": _anchored("idremote")}),
        ("ExpectColumnValuesToMatchRegex", {"column": "oadc", "regex": _anchored("oadc")}),
        ("ExpectColumnValuesToNotBeNull", {"column": "msg"}),
        ("ExpectColumnValuesToBeBetween", {"column": "segments", "min_value": 1,
                                           "max_value": segments}),
    ]  # fmt: skip


def _anchored(name: str) -> str:
    return f"^{FIELD_PATTERNS[name]}$"


def check_files(
    paths: Sequence[Path],
    rules: Rules,
    optouts: pd.Series,
    *,
    encoding: str = "utf-8",
    batch_rows: int = BATCH_ROWS,
) -> ContractResult:
    """Check SEND files against the contract; ``optouts`` are E.164 numbers.

    Per file, each expectation's counts are the sums over the file's batches. Besides
    great-expectations' own: ``expect_four_fields`` (records that do not have four fields),
    ``expect_msisdn_unique_within_file`` (rows whose number is on another row of the same
    file: what ``ExpectColumnValuesToBeUnique`` would count on the whole file, where its
    per-batch run sees only repeats inside a batch) and, once, ``expect_msisdn_unique_across_files``
    (numbers in more than one file, one count per extra file).
    """
    with Contract(rules, optouts, encoding=encoding, batch_rows=batch_rows) as contract:
        for path in paths:
            contract.check(path)
        return contract.finish()


class Contract:
    """The contract checked one file at a time, as the files come (:func:`check_files`
    for files already written; :mod:`smsdrop.contract_process` while they are written).

    Entering it imports great-expectations and builds the validation, once."""

    def __init__(
        self,
        rules: Rules,
        optouts: pd.Series,
        *,
        encoding: str = "utf-8",
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
        self.rules, self.encoding, self.batch_rows = rules, encoding, batch_rows
        self._optouts = pa.array(optouts.dropna().unique(), pa.large_string())
        self._not_null = [
            a["column"] for kind, a in expectations(rules) if kind.endswith("ToNotBeNull")
        ]
        self._result = ContractResult()
        self._distinct: list[np.ndarray] = []  # each file's numbers, sorted, once each
        self._validate: Any = None
        self._stack = ExitStack()

    def __enter__(self) -> Self:
        self._validate = self._stack.enter_context(_validation(self.rules))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def files_checked(self) -> int:
        return self._result.files

    def check(self, path: Path, name: str | None = None) -> None:
        """Add one file's counts, under ``name`` (its file name by default)."""
        name = name or path.name
        counts: dict[tuple[str, str | None], dict[str, Any]] = {}
        numbers_in_file: list[np.ndarray] = []
        reader = _Batches(path, self.encoding, self.batch_rows)
        for batch in reader:
            frame = _frame(batch, self._not_null)
            outcome = self._validate(frame, _among(self._optouts, batch.column("msisdn")))
            for item in outcome.results:
                _add(counts, name, item, len(frame))
            numbers_in_file.append(to_int64(batch.column("msisdn")))
        rows = sum(len(n) for n in numbers_in_file)
        within, once = _repeats_within(numbers_in_file)
        self._distinct.append(once)
        self._result.expectations += [
            *counts.values(),
            _own_check(name, "expect_four_fields", None, rows + reader.malformed,
                       reader.malformed),
            _own_check(name, "expect_msisdn_unique_within_file", "msisdn", rows, within),
        ]  # fmt: skip
        self._result.files += 1
        self._result.rows += rows

    def finish(self, later_optouts: pd.Series | None = None) -> ContractResult:
        """The result, with the checks across the files; ``later_optouts``, when given, are
        opt-outs that arrived after the files were checked: ``expect_msisdn_not_in_later_optouts``
        counts the campaign's numbers among them."""
        result = self._result
        numbers = _across(self._distinct)
        result.expectations.append(
            _own_check("*", "expect_msisdn_unique_across_files", "msisdn", result.rows,
                       _repeats_across(numbers))
        )  # fmt: skip
        if later_optouts is not None:
            result.expectations.append(
                _own_check("*", "expect_msisdn_not_in_later_optouts", "msisdn", result.rows,
                           _found(numbers, later_optouts))
            )  # fmt: skip
        result.success = all(e["success"] for e in result.expectations)
        return result


@contextmanager
def _validation(rules: Rules) -> Iterator[Any]:
    """One great-expectations validation (context, suite, definition) for every batch of
    every file: building it is what costs, not running it. Yields ``validate(frame,
    optouts)``."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx  # ~2.5 s: only when a contract is checked
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("smsdrop")
        .add_dataframe_asset("send_batch")
        .add_batch_definition_whole_dataframe("batch")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="smsdrop_send_contract"))
    # The opt-outs are a run parameter: each batch's run gets only those among its numbers
    # (all the expectation can find). great-expectations serialises an expectation's
    # arguments dozens of times per run, so the whole list (100,000 numbers for 10 million
    # recipients) made the contract ~10 s per file (docs/PERFORMANCE.md).
    for kind, arguments in expectations(rules):
        suite.add_expectation(getattr(gx.expectations, kind)(**arguments))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name="smsdrop_send_contract")
    )

    def validate(frame: pd.DataFrame, optouts: list[str]) -> Any:
        return definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={OPTOUTS_PARAMETER: optouts},
            result_format=RESULT_FORMAT,
        )

    with _no_fingerprints():
        yield validate


@contextmanager
def _no_fingerprints() -> Iterator[None]:
    """Loading a dataframe, great-expectations fingerprints it (pandas' hash of every value,
    for its batch markers, when the frame is under ``HASH_THRESHOLD`` bytes): ~1.5 s per
    1,000,000 rows, more than the eight expectations together. Nothing reads it here: the
    threshold is 0 meanwhile (a test says when an upgrade of great-expectations ends this)."""
    from great_expectations.execution_engine import pandas_execution_engine

    threshold = getattr(pandas_execution_engine, "HASH_THRESHOLD", None)
    pandas_execution_engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        pandas_execution_engine.HASH_THRESHOLD = threshold


class _Batches:
    """A SEND file's records as tables of at most ``rows`` records (idremote, msisdn, oadc,
    msg; text, never null), read ``READ_BLOCK`` bytes at a time; ``malformed`` counts the
    records without four fields, as :func:`smsdrop.csvfile.read_records` skips them."""

    def __init__(self, path: Path, encoding: str, rows: int) -> None:
        self.path, self.encoding, self.rows = path, encoding, rows
        self.malformed = 0

    def __iter__(self) -> Iterator[pa.Table]:
        pending: list[pa.RecordBatch] = []
        held, given = 0, 0
        for block in self._blocks():
            pending.append(block)
            held += block.num_rows
            while held >= self.rows:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, self.rows).combine_chunks()  # kernels run ~10 % faster
                rest = table.slice(self.rows)
                pending, held, given = rest.to_batches(), rest.num_rows, given + 1
        if held or not given:  # the rest, or one empty batch for a file without records
            yield pa.Table.from_batches(pending, _SCHEMA).combine_chunks()

    def _blocks(self) -> Iterator[pa.RecordBatch]:
        if self.path.stat().st_size == 0:  # pyarrow refuses an empty file
            return

        def on_invalid(row: pacsv.InvalidRow) -> str:
            self.malformed += 1
            return "skip"

        options = read_options(SEND_FIELDS, use_threads=True, block_size=READ_BLOCK)
        options.encoding = self.encoding
        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=options,
                parse_options=parse_options(
                    ignore_empty_lines=False, invalid_row_handler=on_invalid
                ),
                convert_options=_CONVERT,
            )
            yield from reader
        except (pa.ArrowInvalid, UnicodeDecodeError, LookupError) as error:
            kind = str(error).splitlines()[0].split(":")[0]  # the kind of fault, not the data
            raise InputError(f"not a readable SEND file ({kind})", file=str(self.path)) from None


#: The messages of a campaign repeat (a template): read as a dictionary, a text's segments
#: are counted once per block, and the column is not copied on its way to pandas.
_MESSAGES = pa.dictionary(pa.int32(), pa.large_string())
_TYPES = {**dict.fromkeys(SEND_FIELDS, pa.large_string()), "msg": _MESSAGES}
_CONVERT = text_options(SEND_FIELDS, pa.large_string())
_CONVERT.column_types = _TYPES
_SCHEMA = pa.schema(list(_TYPES.items()))


#: pandas' pyarrow strings hold large_string: the columns go over without a copy.
_PANDAS_TYPES = {pa.large_string(): pd.StringDtype("pyarrow")}


def _frame(batch: pa.Table, not_null: list[str]) -> pd.DataFrame:
    """A batch as great-expectations reads it: the four fields (an empty field is null in
    the columns that must not be null: that is how a missing value looks in a CSV; the
    messages as a categorical) and each message's segments, as the text is in the file."""
    messages = batch.column("msg").chunks or [pa.array([], _MESSAGES)]
    segments = np.concatenate([_segments(chunk) for chunk in messages])
    columns = {}
    for name in SEND_FIELDS:
        column = batch.column(name)
        if name in not_null:
            column = pa.chunked_array([_empty_as_null(c) for c in column.chunks], column.type)
        columns[name] = column
    frame = pa.table(columns).to_pandas(types_mapper=_PANDAS_TYPES.get)
    frame["segments"] = segments
    return frame


def _segments(messages: pa.DictionaryArray) -> np.ndarray:
    """Each message's segments, counted once per distinct text."""
    facts = message_facts(messages.dictionary, EncodingPolicy.UCS2, long_sms=True)
    return facts.segments[messages.indices.to_numpy(zero_copy_only=False)]


def _empty_as_null(values: pa.Array) -> pa.Array:
    """``values`` with the empty texts as nulls (a dictionary's indices, or the texts)."""
    if isinstance(values, pa.DictionaryArray):
        empty = pc.equal(values.dictionary, "")
        if not pc.any(empty).as_py():
            return values
        indices = pc.if_else(empty.take(values.indices), None, values.indices)
        return pa.DictionaryArray.from_arrays(indices, values.dictionary)
    empty = pc.equal(values, "")
    if not pc.any(empty).as_py():
        return values
    return pc.if_else(empty, pa.scalar(None, values.type), values)


def _among(optouts: pa.Array, msisdn: pa.ChunkedArray) -> list[str]:
    """The opted-out numbers that are in ``msisdn`` (exact text, as ``isin`` compares); the
    opt-outs are the set looked up (they are fewer than a batch's numbers)."""
    found = msisdn.filter(pc.is_in(msisdn, value_set=optouts))
    return pc.unique(found).to_pylist()


def _add(
    counts: dict[tuple[str, str | None], dict[str, Any]], file: str, item: Any, rows: int
) -> None:
    """Add one batch's result for one expectation to the file's counts."""
    config = item.expectation_config
    column = config.kwargs.get("column")
    found = item.result or {}
    entry = counts.setdefault(
        (config.type, column),
        {"file": file, "expectation": config.type, "column": column, "success": True,
         "element_count": 0, "unexpected_count": 0},
    )  # fmt: skip
    entry["success"] &= bool(item.success)
    entry["element_count"] += int(found.get("element_count", rows))
    entry["unexpected_count"] += int(found.get("unexpected_count") or 0)


def _own_check(
    file: str, expectation: str, column: str | None, rows: int, unexpected: int
) -> dict[str, Any]:
    """A check great-expectations cannot make on one batch, in the same shape."""
    return {
        "file": file,
        "expectation": expectation,
        "column": column,
        "success": unexpected == 0,
        "element_count": rows,
        "unexpected_count": unexpected,
    }


def _repeats_within(numbers: list[np.ndarray]) -> tuple[int, np.ndarray]:
    """Rows whose number is on another row of the file (null = -1 ignored), and the file's
    numbers sorted, once each."""
    values = np.concatenate(numbers) if numbers else np.zeros(0, np.int64)
    values.sort()  # in place: the file's numbers are held once more, not twice
    values = values[values >= 0]
    same = values[1:] == values[:-1]
    repeated = np.zeros(len(values), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    return int(np.count_nonzero(repeated)), values[np.concatenate(([True], ~same))[: len(values)]]


def _across(distinct: list[np.ndarray]) -> np.ndarray:
    """Every file's numbers (each given once per file), sorted; the list is emptied, so the
    campaign's numbers are held once while they are sorted."""
    if not distinct:
        return np.zeros(0, np.int64)
    values = np.concatenate(distinct)
    distinct.clear()
    values.sort(kind="stable")  # in place; merges the files' sorted runs
    return values


def _repeats_across(numbers: np.ndarray) -> int:
    """How many times a number is in one more file (``numbers`` sorted, once per file)."""
    return int(np.count_nonzero(numbers[1:] == numbers[:-1]))


def _found(numbers: np.ndarray, optouts: pd.Series) -> int:
    """How many of the sorted ``numbers`` (once per file) are among ``optouts``."""
    wanted = np.unique(to_int64(optouts.dropna()))
    wanted = wanted[wanted >= 0]
    if not len(numbers) or not len(wanted):
        return 0
    left = np.searchsorted(numbers, wanted, side="left")
    right = np.searchsorted(numbers, wanted, side="right")
    return int((right - left).sum())
