"""The ``smsdrop`` command: the protocol core without Airflow.

Exit codes: 0 success; 1 the input has problems (listed); 2 usage error; 3 internal error.
No user input produces a traceback (set SMSDROP_DEBUG=1 to see one for an internal error).
``--json`` output is a stable interface, documented in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time
from pathlib import Path

from smsdrop.argtypes import aware_datetime, time_of_day
from smsdrop.dropbox import MAX_RECORDS
from smsdrop.errors import InputError, SmsdropError, printable

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


MAX_BATCH = 10_000_000


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An integer argument in ``low..high`` (``--batch-size 0`` would loop forever)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {printable(text)}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low:,}..{high:,}, not {value:,}")
        return value

    return parse


def region_code(text: str) -> str:
    """An ISO 3166 alpha-2 code libphonenumber knows (``FR``; not ``FRA``, not ``XX``)."""
    # libphonenumber's list itself (what smsdrop.msisdn uses), without msisdn's data stack.
    from phonenumbers.phonenumberutil import SUPPORTED_REGIONS

    code = text.strip().upper()
    if code not in SUPPORTED_REGIONS:
        raise argparse.ArgumentTypeError(
            f"not a country code: {printable(text)} (ISO 3166 alpha-2, e.g. FR, BE, GB)"
        )
    return code


def minute_of_day(text: str) -> time:
    """``HH:MM``, on the minute (a window's end)."""
    value = time_of_day(text)
    if value.second or value.microsecond or value.tzinfo is not None:
        raise argparse.ArgumentTypeError(f"not a time on the minute HH:MM: {printable(text)}")
    return value


def instant(text: str) -> datetime:
    """An aware ISO 8601 date-time that exists as a UTC instant (year 1 at +05:00 does not)."""
    value = aware_datetime(text)
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError(f"out of range: {printable(text)}") from None
    return value


def file_encoding(text: str) -> str:
    """A text encoding Python knows that can write a SEND file."""
    from smsdrop.csvfile import check_encoding

    try:
        check_encoding(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(error.reason) from None
    return text


def optout_mention(text: str) -> str:
    """An opt-out mention the check can use (:func:`smsdrop.optout_mention.mention_problem`)."""
    from smsdrop.optout_mention import mention_problem

    problem = mention_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"the opt-out mention {problem}: {printable(text)}")
    return text


def amount(text: str) -> str:
    """A cost cap as the campaign field ``max_cost`` spells it (``250``, ``99.50``)."""
    from smsdrop.fields import BY_NAME

    rule = BY_NAME["max_cost"]
    if not text or rule.problem(text):
        raise argparse.ArgumentTypeError(
            f"{rule.expected.removesuffix(', or empty')}: {printable(text)}"
        )
    return text


def _not_utf8(argv: Sequence[str]) -> str | None:
    """The first argument that is not UTF-8 text (Python keeps such bytes as surrogates)."""
    for position, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return f"argument {position} ({printable(arg, 40)}) is not UTF-8 text"
    return None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"smsdrop: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    from smsdrop.gsm import EncodingPolicy

    parser = _Parser(prog="smsdrop", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("segments", help="GSM 03.38 facts of a message text")
    p.add_argument("text")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("check", help="validate SEND files as the provider would")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--long-sms", action="store_true", help="the account allows 5 segments")
    p.add_argument(
        "--encoding-policy",
        choices=[e.value for e in EncodingPolicy],
        default="reject",
        help="ucs2: accept non-GSM text (sent as Unicode); default reject",
    )
    p.add_argument("--file-encoding", type=file_encoding, default="utf-8")
    p.add_argument("--max-records", type=bounded_int(1, MAX_RECORDS), default=MAX_RECORDS)
    p.add_argument("--default-region", type=region_code, default="FR")
    p.add_argument(
        "--optout-mention",
        type=optout_mention,
        metavar="TEXT",
        help="records to French numbers without this mention (e.g. 'STOP au 36111'; accents, "
        "case and spacing forgiven) are MSG_NO_OPTOUT_MENTION",
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("window", help="is a send time allowed for a destination country")
    p.add_argument("--country", type=region_code, default="FR")
    p.add_argument("--at", type=instant, required=True, help="ISO 8601 with a time zone")
    p.add_argument("--end", type=minute_of_day, help="narrow the window's end, e.g. 20:00")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("prepare", help="audience file → SEND files, rejects and summary")
    p.add_argument("audience", type=Path, help="CSV or Parquet with idremote, msisdn, …")
    p.add_argument("--service-id", required=True)
    p.add_argument("--campaign", required=True)
    p.add_argument("--sender", required=True, help="OADC, 1–11 letters or digits")
    p.add_argument("--message", required=True, help="template with {column} placeholders")
    p.add_argument("--default-region", type=region_code, default="FR")
    p.add_argument("--optouts", type=Path, help="CSV/Parquet of opted-out numbers")
    p.add_argument("--send-at", type=instant, help="ISO 8601; default: as soon as allowed")
    p.add_argument("--window-end", type=minute_of_day, help="narrow the French window's end")
    p.add_argument("--long-sms", action="store_true")
    p.add_argument("--encoding-policy", choices=[e.value for e in EncodingPolicy], default="reject")
    p.add_argument("--file-encoding", type=file_encoding, default="utf-8")
    p.add_argument("--line-end", choices=["crlf", "lf"], default="crlf")
    p.add_argument("--max-records", type=bounded_int(1, MAX_RECORDS), default=MAX_RECORDS)
    p.add_argument("--batch-size", type=bounded_int(1, MAX_BATCH), default=250_000)
    p.add_argument(
        "--optout-mention",
        type=optout_mention,
        metavar="TEXT",
        help="the opt-out mention every marketing SMS to a French number must carry, e.g. "
        "'STOP au 36111' (accents, case and spacing forgiven); rows without it are "
        "MSG_NO_OPTOUT_MENTION. Default: not checked (a warning says so)",
    )
    p.add_argument(
        "--transactional",
        action="store_true",
        help="transactional traffic: no French window, no opt-out mention check",
    )
    p.add_argument(
        "--prices",
        type=Path,
        metavar="FILE",
        help="price list (YAML: currency, default, countries) for the cost estimate; default "
        "include/prices.yaml, an EXAMPLE to replace with the account's prices",
    )
    p.add_argument(
        "--max-cost",
        type=amount,
        metavar="AMOUNT",
        help="stop, exit 1 and leave no SEND file when the estimate is over this amount "
        "(in the price list's currency)",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--json", action="store_true")

    from smsdrop.sandbox.cli import add_parser as add_sandbox_parser

    add_sandbox_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    bad = _not_utf8(argv)
    if bad:
        parser.error(bad)
    args = parser.parse_args(argv)
    _check_window_end(parser, args)
    try:
        return COMMANDS[args.command](args)
    except SmsdropError as error:  # InputError included: one line, control characters escaped
        print(f"smsdrop {args.command}: {printable(error, 2000)}", file=sys.stderr)
        return EXIT_PROBLEMS
    except OSError as error:
        where = printable(error.filename, 500)
        print(f"smsdrop {args.command}: {where}: {error.strerror}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if os.environ.get("SMSDROP_DEBUG"):
            raise
        print(
            f"smsdrop {args.command}: internal error ({type(error).__name__}: {error}); "
            "rerun with SMSDROP_DEBUG=1 for details",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _check_window_end(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A window end may only narrow the legal window: refuse a widening one as usage."""
    end, country = {
        "window": (getattr(args, "end", None), getattr(args, "country", "FR")),
        "prepare": (getattr(args, "window_end", None), "FR"),
    }.get(args.command, (None, None))
    if end is None:
        return
    from smsdrop import windows

    try:
        windows.narrowed(country, end)
    except ValueError as error:
        parser.error(str(error))


def _segments(args: argparse.Namespace) -> int:
    from smsdrop.gsm import text_facts

    facts = text_facts(args.text)
    out = {
        "encoding": facts.encoding,
        "gsm7": facts.gsm7,
        "septets": facts.septets,
        "ucs2_units": facts.ucs2_units,
        "segments": facts.segments,
        "non_gsm": list(facts.non_gsm),
    }
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        size = f"{facts.septets} septets" if facts.gsm7 else f"{facts.ucs2_units} UCS-2 units"
        print(f"{facts.encoding}: {size}, {facts.segments} segment(s)")
        if facts.non_gsm:
            print("not GSM 03.38: " + " ".join(repr(c) for c in facts.non_gsm))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from smsdrop.gsm import EncodingPolicy
    from smsdrop.intake_check import check_file
    from smsdrop.record_rules import Rules

    rules = Rules(
        EncodingPolicy(args.encoding_policy),
        args.long_sms,
        args.default_region,
        True,
        args.optout_mention,
    )
    reports = [
        check_file(path, rules, encoding=args.file_encoding, cap=args.max_records)
        for path in args.files
    ]
    ok = all(report.ok for report in reports)
    if args.json:
        print(json.dumps({"ok": ok, "files": [r.as_dict() for r in reports]}, indent=2))
    else:
        for report in reports:
            if report.ok:
                print(f"{printable(report.file, 500)}: OK, {report.records} records")
            for problem in report.problems:
                print(printable(problem.describe(report.file), 2000))
    return EXIT_OK if ok else EXIT_PROBLEMS


def _window(args: argparse.Namespace) -> int:
    from smsdrop import windows

    window = (
        windows.narrowed(args.country, args.end) if args.end else windows.window_for(args.country)
    )
    years = windows.calendar_years(window)
    try:
        year = args.at.astimezone(window.tz).year
    except OverflowError:
        raise InputError(f"{args.at.isoformat()} is out of range in {window.timezone}") from None
    if years is not None and not years[0] <= year <= years[1]:
        raise InputError(
            f"no public-holiday calendar for {args.country} in {year} "
            f"(known {years[0]}–{years[1]}): no answer for that date"
        )
    try:
        decision = windows.check(args.at, args.country, window)
    except (OverflowError, ValueError) as error:
        raise InputError(f"no allowed instant found ({error})") from None
    out = {
        "allowed": decision.allowed,
        "next": decision.next.astimezone(window.tz).isoformat(),
        "reason": decision.reason,
    }
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        verdict = "allowed" if decision.allowed else f"not allowed ({decision.reason})"
        print(f"{args.at.isoformat()} {args.country}: {verdict}; next: {out['next']}")
    return EXIT_OK


def _prepare(args: argparse.Namespace) -> int:
    from smsdrop.fields import WINDOW_END
    from smsdrop.prepare import load_optouts, prepare
    from smsdrop.pricing import DEFAULT_PRICES, PriceList
    from smsdrop.spec import CampaignSpec

    # Not from_mapping: prepare checks what the arguments hold, as it reads the audience.
    spec = CampaignSpec(
        campaign_id=args.campaign,
        service_id=args.service_id,
        audience=str(args.audience),
        message=args.message,
        sender=args.sender,
        send_at=args.send_at.isoformat() if args.send_at else "",
        long_sms=args.long_sms,
        encoding_policy=args.encoding_policy,
        window_end=args.window_end.strftime("%H:%M") if args.window_end else WINDOW_END.default,
        default_region=args.default_region,
        optout_mention=args.optout_mention or "",
        frequency_cap="off",  # no send history outside the warehouse
        transactional=args.transactional,
        max_cost=args.max_cost or "",
    )
    prices = PriceList.load(args.prices or DEFAULT_PRICES)  # refused before any audience row
    optouts = load_optouts(args.optouts, args.default_region) if args.optouts else None
    summary = prepare(
        args.audience,
        spec,
        args.out,
        optouts=optouts,
        batch_size=args.batch_size,
        now=datetime.now(UTC),
        max_records=args.max_records,
        file_encoding=args.file_encoding,
        line_end=args.line_end,
        prices=prices,
    )
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_summary(summary.as_dict()))
    if not summary.files:
        print("smsdrop prepare: no valid recipient: nothing to send", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def format_summary(summary: dict) -> str:
    """A campaign summary for people: the figures a sender checks before sending."""
    lines = [
        f"campaign {summary['campaign_id']} (service {summary['service_id']})",
        f"  send at      {summary['send_at']}"
        + (
            f"  (asked {summary['requested_send_at']}; moved into the send window)"
            if summary["send_at_moved"]
            else ""
        ),
        f"  recipients   {summary['recipients']:,}",
        f"  valid        {summary['valid']:,}",
        f"  rejected     {summary['rejected']:,}",
    ]
    for reason, count in summary["rejects_by_reason"].items():
        lines.append(f"    {reason:<20} {count:,}")
    lines.append(
        "  encodings    " + ", ".join(f"{k} {v:,}" for k, v in summary["encodings"].items())
    )
    lines.append(f"  segments     {summary['segments']:,} (the billing unit)")
    lines.append(
        "  countries    " + ", ".join(f"{k} {v:,}" for k, v in summary["countries"].items())
    )
    cost = summary.get("cost")
    if cost:
        lines.append(f"  cost         {cost_line(cost)} (estimate)")
    optout_file = summary.get("optout_file")
    if optout_file:
        lines.append(
            f"  opt-out file {optout_file['entries']:,} entries, {optout_file['numbers']:,} "
            f"numbers, {optout_file['unreadable']:,} not numbers"
        )
    for file in summary["files"]:
        lines.append(
            f"  file         {file['name']}  {file['rows']:,} records  {file['bytes']:,} B"
        )
    for warning in summary["warnings"]:
        lines.append(f"  warning      {warning}")
    return "\n".join(lines)


def cost_line(cost: dict) -> str:
    """An estimate in one line: total, then by country and by encoding."""
    currency = cost["currency"]
    parts = [
        ", ".join(f"{k} {v}" for k, v in cost[key].items()) for key in ("by_country", "by_encoding")
    ]
    return f"{cost['total']} {currency}" + "".join(f"; {p}" for p in parts if p)


def _sandbox(args: argparse.Namespace) -> int:
    from smsdrop.sandbox.cli import run

    return run(args)


COMMANDS = {
    "segments": _segments,
    "check": _check,
    "window": _window,
    "prepare": _prepare,
    "sandbox": _sandbox,
}

if __name__ == "__main__":
    sys.exit(main())
