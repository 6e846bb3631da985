"""Runs on the written SEND files, before their upload: the DAG's ``contract`` task.

The data contract on what is about to be sent, checked with great-expectations.

Preparation already enforces every rule; the contract is a second, independent look at
the SEND files themselves, just before they are uploaded: if preparation had a bug, or an
opt-out arrived while the campaign was being prepared, the contract stops the campaign
before anything reaches the provider. Rules are data (:func:`expectations`).

Each file is checked on its own (memory follows one file, ≤1,000,000 rows); uniqueness
across files is checked on int64 numbers. The result keeps counts only: great-expectations'
lists of unexpected values would hold phone numbers and are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from smsdrop.csvfile import read_records
from smsdrop.gsm import MAX_LONG_SEGMENTS, EncodingPolicy, check_messages
from smsdrop.record_rules import FIELD_PATTERNS, Rules, to_int64

#: E.164 as the provider wants it in a SEND file.
E164 = r"^\+[1-9][0-9]{6,14}$"
#: The suite parameter that holds a file's opted-out numbers.
OPTOUTS_PARAMETER = "optouts"


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
    are the suite parameter :data:`OPTOUTS_PARAMETER`, given per file's run."""
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
    paths: Sequence[Path], rules: Rules, optouts: pd.Series, *, encoding: str = "utf-8"
) -> ContractResult:
    """Check SEND files against the contract; ``optouts`` are E.164 numbers."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx  # ~2.5 s: only when a contract is checked
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("smsdrop")
        .add_dataframe_asset("send_file")
        .add_batch_definition_whole_dataframe("file")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="smsdrop_send_contract"))
    # The opt-outs are a run parameter: each file's run gets only those among its numbers
    # (all the expectation can find). great-expectations serialises an expectation's
    # arguments dozens of times per run, so the whole list (100,000 numbers for 10 million
    # recipients) made the contract ~10 s per file (docs/PERFORMANCE.md).
    for kind, arguments in expectations(rules):
        suite.add_expectation(getattr(gx.expectations, kind)(**arguments))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name="smsdrop_send_contract")
    )

    numbers = pa.array(optouts.dropna().unique(), pa.string())
    result = ContractResult()
    seen: list[np.ndarray] = []
    for path in paths:
        frame, malformed = _send_frame(path, encoding)
        outcome = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={OPTOUTS_PARAMETER: _among(numbers, frame["msisdn"])},
            result_format="BASIC",
        )
        for item in outcome.results:
            config = item.expectation_config
            counts = item.result or {}
            result.expectations.append(
                {
                    "file": path.name,
                    "expectation": config.type,
                    "column": config.kwargs.get("column"),
                    "success": bool(item.success),
                    "element_count": int(counts.get("element_count", len(frame))),
                    "unexpected_count": int(counts.get("unexpected_count") or 0),
                }
            )
        result.expectations.append(
            _own_check(path.name, "expect_four_fields", None, len(frame) + malformed, malformed)
        )
        result.success &= bool(outcome.success) and not malformed
        result.files += 1
        result.rows += len(frame)
        seen.append(to_int64(frame["msisdn"]))
    repeated = _repeated_across(seen)
    result.expectations.append(
        _own_check("*", "expect_msisdn_unique_across_files", "msisdn", result.rows, repeated)
    )
    result.success &= repeated == 0
    return result


def _send_frame(path: Path, encoding: str) -> tuple[pd.DataFrame, int]:
    """A SEND file as a frame with each message's segment count (per distinct text), and
    the number of records without four fields."""
    records = read_records(path.read_bytes(), str(path), encoding=encoding)
    table = records.table.select(["idremote", "msisdn", "oadc", "msg"])
    frame = table.cast(pa.schema([(n, pa.string()) for n in table.column_names])).to_pandas(
        types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get
    )
    # The segments of the text as it is in the file: no transliteration any more.
    facts = check_messages(frame["msg"], EncodingPolicy.UCS2, long_sms=True)
    frame["segments"] = facts["segments"].to_numpy()
    return frame, len(records.malformed)


def _among(optouts: pa.Array, msisdn: pd.Series) -> list[str]:
    """The opted-out numbers that are in ``msisdn`` (exact text, as ``isin`` compares)."""
    column = pa.array(msisdn.dropna(), pa.string())
    return optouts.filter(pc.is_in(optouts, value_set=column)).to_pylist()


def _own_check(
    file: str, expectation: str, column: str | None, rows: int, unexpected: int
) -> dict[str, Any]:
    """A check great-expectations cannot make on one file, in the same shape."""
    return {
        "file": file,
        "expectation": expectation,
        "column": column,
        "success": unexpected == 0,
        "element_count": rows,
        "unexpected_count": unexpected,
    }


def _repeated_across(numbers: list[np.ndarray]) -> int:
    """How many numbers appear more than once over all files (int64, null = -1 ignored)."""
    if not numbers:
        return 0
    values = np.sort(np.concatenate(numbers))
    values = values[values >= 0]
    return int(np.count_nonzero(values[1:] == values[:-1]))
