"""Runs on one SEND file as the provider's intake checks it: ``smsdrop check``, the sandbox.

It checks a SEND file as the provider would, and a little more, listing every problem.

The provider checks the name, the encoding, four fields per record, no header, the field
rules, no duplicate MSISDN and at most 1,000,000 records. We also flag what it would accept
but a sender regrets: non-GSM characters (the provider silently replaces them) and numbers
that are valid but not mobiles. docs/PROTOCOL.md records both choices. Given an opt-out
mention (``Rules.optout_mention``, ``smsdrop check --optout-mention``), a record to a French
number without it is ``MSG_NO_OPTOUT_MENTION``: the same rule ``prepare`` applies, through
the same :func:`~smsdrop.record_rules.check_batch`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from smsdrop import naming
from smsdrop.csvfile import MAX_RECORDS, SEND_FIELDS, CsvStructureError, read_records
from smsdrop.errors import InputError
from smsdrop.reasons import Reason
from smsdrop.record_rules import Dedupe, Rules, validate

#: Extensions a SEND file may carry when a user checks it (the provider takes .csv).
CHECKABLE_EXTENSIONS = ("csv", "tmp")
HEADER = ";".join(name.upper() for name in SEND_FIELDS)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file; record and line count from 1 (None: the whole file)."""

    reason: str
    detail: str
    record: int | None = None
    line: int | None = None
    field: str | None = None

    def describe(self, file: str) -> str:
        where = file
        if self.record is not None:
            where += f": record {self.record} (line {self.line})"
        if self.field:
            where += f" field {self.field}"
        return f"{where}: {self.reason}" + (f" — {self.detail}" if self.detail else "")


@dataclass
class FileReport:
    file: str
    records: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "ok": self.ok,
            "records": self.records,
            "problems": [asdict(p) for p in self.problems],
        }


def check_file(
    path: Path, rules: Rules | None = None, *, encoding: str = "utf-8", cap: int = MAX_RECORDS
) -> FileReport:
    """Every problem of one SEND file: its name, then its bytes, then each record."""
    rules = rules or Rules(require_e164=True)
    report = FileReport(str(path))
    try:
        name = naming.parse_name(path.name)
        if name.kind is not naming.FileKind.SEND:
            report.problems.append(Problem("NAME_INVALID", f"a {name.kind} file, not a SEND file"))
        elif name.ext not in CHECKABLE_EXTENSIONS:
            report.problems.append(
                Problem("NAME_INVALID", f".{name.ext}: the provider only processes .csv files")
            )
    except InputError as error:
        report.problems.append(Problem("NAME_INVALID", error.reason))
    if path.exists() and not path.is_file():  # a FIFO or a device would hang or never end
        report.problems.append(Problem("FILE_UNREADABLE", "not a regular file"))
        return report
    try:
        data = path.read_bytes()
    except OSError as error:
        report.problems.append(Problem("FILE_UNREADABLE", error.strerror or str(error)))
        return report
    try:
        parsed = read_records(data, str(path), encoding=encoding, strict=True)
    except CsvStructureError as error:
        report.problems.append(Problem("CSV_INVALID", error.reason, line=error.line))
        return report
    except InputError as error:
        report.problems.append(Problem("ENCODING_INVALID", error.reason, line=error.line))
        return report

    report.records = parsed.table.num_rows + len(parsed.malformed)
    if report.records == 0:
        report.problems.append(Problem("FILE_EMPTY", "no records"))
    if report.records > cap:
        report.problems.append(
            Problem("TOO_MANY_RECORDS", f"{report.records} records; at most {cap} per file")
        )
    problems = [
        Problem(Reason.RECORD_MALFORMED, f"{bad.fields} fields, expected 4", bad.record, bad.line)
        for bad in parsed.malformed
    ]
    frame = parsed.table.to_pandas(types_mapper=pd.ArrowDtype)
    if len(frame):
        problems += _record_problems(frame, rules)
    problems.sort(key=lambda p: (p.record or 0, p.field or ""))
    report.problems += problems
    return report


def _record_problems(frame: pd.DataFrame, rules: Rules) -> list[Problem]:
    frame = frame.rename(columns={"record": "row"})
    checked = validate(frame, Rules(**{**asdict(rules), "require_e164": True}))
    _, duplicates = Dedupe().split(checked.valid)
    rejects = pd.concat([checked.rejects, duplicates], ignore_index=True)
    lines = pd.Series(frame["line"].to_numpy(), index=frame["row"].to_numpy())
    lines = lines.reindex(rejects["row"].to_numpy()).tolist()
    header = frame.iloc[0, :4].astype(str).str.upper().str.cat(sep=";") == HEADER
    problems = []
    for row, line, reason, field_name in zip(
        rejects["row"].tolist(),
        lines,
        rejects["reason"].tolist(),
        rejects["field"].tolist(),
        strict=True,
    ):
        detail = "a header line: SEND files have none" if header and row == 1 else ""
        problems.append(Problem(reason, detail, int(row), int(line), field_name))
    return problems
