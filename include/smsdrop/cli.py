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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from smsdrop.argtypes import aware_datetime, time_of_day
from smsdrop.errors import InputError, SmsdropError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


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
    p.add_argument("--file-encoding", default="utf-8")
    p.add_argument("--max-records", type=int, default=1_000_000)
    p.add_argument("--default-region", default="FR")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("window", help="is a send time allowed for a destination country")
    p.add_argument("--country", default="FR")
    p.add_argument("--at", type=aware_datetime, required=True, help="ISO 8601 with a time zone")
    p.add_argument("--end", type=time_of_day, help="narrow the window's end, e.g. 20:00")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("prepare", help="audience file → SEND files, rejects and summary")
    p.add_argument("audience", type=Path, help="CSV or Parquet with idremote, msisdn, …")
    p.add_argument("--service-id", required=True)
    p.add_argument("--campaign", required=True)
    p.add_argument("--sender", required=True, help="OADC, 1–11 letters or digits")
    p.add_argument("--message", required=True, help="template with {column} placeholders")
    p.add_argument("--default-region", default="FR")
    p.add_argument("--optouts", type=Path, help="CSV/Parquet of opted-out numbers")
    p.add_argument("--send-at", type=aware_datetime, help="ISO 8601; default: as soon as allowed")
    p.add_argument("--window-end", type=time_of_day, help="narrow the French window's end")
    p.add_argument("--long-sms", action="store_true")
    p.add_argument("--encoding-policy", choices=[e.value for e in EncodingPolicy], default="reject")
    p.add_argument("--file-encoding", default="utf-8")
    p.add_argument("--line-end", choices=["crlf", "lf"], default="crlf")
    p.add_argument("--max-records", type=int, default=1_000_000)
    p.add_argument("--batch-size", type=int, default=250_000)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--json", action="store_true")

    from smsdrop.sandbox.cli import add_parser as add_sandbox_parser

    add_sandbox_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except InputError as error:
        print(f"smsdrop {args.command}: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    except SmsdropError as error:
        print(f"smsdrop {args.command}: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    except OSError as error:
        print(f"smsdrop {args.command}: {error.filename}: {error.strerror}", file=sys.stderr)
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
    from smsdrop.sendcheck import check_file
    from smsdrop.validation import Rules

    rules = Rules(EncodingPolicy(args.encoding_policy), args.long_sms, args.default_region, True)
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
                print(f"{report.file}: OK, {report.records} records")
            for problem in report.problems:
                print(problem.describe(report.file))
    return EXIT_OK if ok else EXIT_PROBLEMS


def _window(args: argparse.Namespace) -> int:
    from smsdrop import windows

    window = windows.window_for(args.country, end=args.end)
    decision = windows.check(args.at, args.country, window)
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
    from smsdrop.gsm import EncodingPolicy
    from smsdrop.prepare import Campaign, prepare, read_optouts

    campaign = Campaign(
        service_id=args.service_id,
        campaign_id=args.campaign,
        sender=args.sender,
        template=args.message,
        send_at=args.send_at,
        default_region=args.default_region,
        long_sms=args.long_sms,
        encoding_policy=EncodingPolicy(args.encoding_policy),
        file_encoding=args.file_encoding,
        line_end=args.line_end,
        max_records=args.max_records,
        window_end=args.window_end.strftime("%H:%M") if args.window_end else None,
    )
    optouts = read_optouts(args.optouts, args.default_region) if args.optouts else None
    summary = prepare(
        args.audience,
        campaign,
        args.out,
        optouts=optouts,
        batch_size=args.batch_size,
        now=datetime.now(UTC),
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
    for file in summary["files"]:
        lines.append(
            f"  file         {file['name']}  {file['rows']:,} records  {file['bytes']:,} B"
        )
    for warning in summary["warnings"]:
        lines.append(f"  warning      {warning}")
    return "\n".join(lines)


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
