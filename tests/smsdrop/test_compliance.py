"""Issue 12 through ``prepare`` and the CLI: the account's options, the opt-out mention,
frequency caps, the cost estimate and the budget stop, with exact figures."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smsdrop import synthetic
from smsdrop.account import Account
from smsdrop.campaign import summary_lines
from smsdrop.errors import InputError
from smsdrop.prepare import prepare as _prepare
from smsdrop.pricing import BudgetExceeded, PriceList
from smsdrop.spec import CampaignSpec
from tests.campaigns import campaign_spec
from tests.smsdrop.test_cli import smsdrop

MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 10:00 in Paris
SUNDAY_12 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # outside the French window
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
MENTION = "STOP au 36111"
CAMPAIGN = campaign_spec(message="{body}", send_at=MONDAY_9.isoformat())
PRICES = PriceList.from_mapping(
    {"currency": "EUR", "default": 0.10, "countries": {"FR": 0.045, "BE": 0.07}}
)


def prepare(*args, **kwargs):
    return _prepare(*args, **{"now": NOW, **kwargs})


def audience(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    frame = pd.DataFrame(rows, columns=["idremote", "msisdn", "body"])
    return synthetic.write_audience(frame, tmp_path / "a.csv")


def rejects(out: Path) -> dict[str, str]:
    frame = pd.read_csv(out / "rejects.csv", dtype=str)
    return dict(zip(frame["idremote"], frame["reason"], strict=True))


def sent(out: Path) -> list[str]:
    return sorted(
        line.split(";")[0]
        for path in out.glob("SEND-*.csv")
        for line in path.read_text().splitlines()
    )


# --- the opt-out mention ----------------------------------------------------------------

MENTION_ROWS = [
    ("A1", "+33612345678", "Soldes -20% STOP au 36111"),
    ("A2", "+33612345679", "Soldes -20% Stop  àU 36 111"),  # accent, case, spacing
    ("A3", "+33612345680", "Soldes -20%"),  # French, no mention
    ("A4", "+33612345681", "Soldes -20% STOP au 36112"),  # another number is not it
    ("A5", "+32470123456", "Soldes -20%"),  # Belgian: no mention needed
    ("A6", "+262692123456", "Soldes -20%"),  # Réunion: French numbering, needed
]


def test_marketing_messages_to_french_numbers_need_the_mention(tmp_path: Path) -> None:
    spec = replace(CAMPAIGN, optout_mention=MENTION)
    summary = prepare(audience(tmp_path, MENTION_ROWS), spec, tmp_path / "o")
    assert rejects(tmp_path / "o") == {
        "A3": "MSG_NO_OPTOUT_MENTION",
        "A4": "MSG_NO_OPTOUT_MENTION",
        "A6": "MSG_NO_OPTOUT_MENTION",
    }
    assert sent(tmp_path / "o") == ["A1", "A2", "A5"]
    assert (summary.recipients, summary.valid, summary.rejected) == (6, 3, 3)
    assert summary.rejects_by_reason == {"MSG_NO_OPTOUT_MENTION": 3}
    assert summary.warnings == []


def test_other_rules_of_the_row_come_first(tmp_path: Path) -> None:
    rows = [
        ("A1", "+33612345678", ""),  # empty placeholder: MSG_TEMPLATE_FIELD, not the mention
        ("A2", "+33612345679", "Promo ☺"),  # not GSM: MSG_NOT_GSM
        ("A3", "06 12", "Promo"),  # not a number: MSISDN_INVALID
        ("A4", "+33612345680", "Promo"),
    ]
    spec = replace(CAMPAIGN, optout_mention=MENTION)
    prepare(audience(tmp_path, rows), spec, tmp_path / "o")
    assert rejects(tmp_path / "o") == {
        "A1": "MSG_TEMPLATE_FIELD",
        "A2": "MSG_NOT_GSM",
        "A3": "MSISDN_INVALID",
        "A4": "MSG_NO_OPTOUT_MENTION",
    }


def test_the_campaign_s_mention_is_checked_once(tmp_path: Path) -> None:
    values = {**CAMPAIGN.to_dict(), "audience": "audience"}
    for mention, why in (
        ("x" * 61, "at most 60"),
        ("STOP\nau 36111", "control"),
        ("\u0301", "nothing to look for"),  # a combining accent alone
    ):
        with pytest.raises(InputError, match=why) as caught:
            CampaignSpec.from_mapping({**values, "optout_mention": mention})
        assert caught.value.field == "optout_mention"
    spec = CampaignSpec.from_mapping({**values, "optout_mention": " STOP au 36111 "})
    assert spec.optout_mention == MENTION


def test_the_account_s_mention_is_the_default(tmp_path: Path) -> None:
    account = Account(optout_short_code="36111")
    summary = prepare(audience(tmp_path, MENTION_ROWS), CAMPAIGN, tmp_path / "o", account=account)
    assert summary.rejects_by_reason == {"MSG_NO_OPTOUT_MENTION": 3}
    # The campaign's own mention wins over the account's.
    spec = replace(CAMPAIGN, optout_mention="STOP au 36112")
    summary = prepare(tmp_path / "a.csv", spec, tmp_path / "p", account=account)
    assert rejects(tmp_path / "p") == {
        "A1": "MSG_NO_OPTOUT_MENTION",
        "A2": "MSG_NO_OPTOUT_MENTION",
        "A3": "MSG_NO_OPTOUT_MENTION",
        "A6": "MSG_NO_OPTOUT_MENTION",
    }


def test_transactional_traffic_is_exempt(tmp_path: Path) -> None:
    path = audience(tmp_path, MENTION_ROWS)
    spec = replace(CAMPAIGN, optout_mention=MENTION, transactional=True, send_at="")
    summary = prepare(path, replace(spec, send_at=SUNDAY_12.isoformat()), tmp_path / "o")
    assert (summary.valid, summary.rejected) == (6, 0)
    assert summary.send_at == "2026-11-29T13:00:00+01:00"  # Sunday: no marketing window
    # An account of transactional traffic makes the campaign so too.
    marketing = replace(spec, transactional=False, send_at=SUNDAY_12.isoformat())
    summary = prepare(path, marketing, tmp_path / "p", account=Account(marketing=False))
    assert (summary.valid, summary.rejected) == (6, 0)
    assert summary.send_at == "2026-11-29T13:00:00+01:00"
    summary = prepare(path, marketing, tmp_path / "q")  # marketing: Monday 08:00
    assert summary.send_at == "2026-11-30T08:00:00+01:00"
    assert summary.rejects_by_reason == {"MSG_NO_OPTOUT_MENTION": 3}


def test_no_mention_at_all_is_a_warning_not_a_check(tmp_path: Path) -> None:
    summary = prepare(audience(tmp_path, MENTION_ROWS), CAMPAIGN, tmp_path / "o")
    assert (summary.valid, summary.rejected) == (6, 0)
    assert len(summary.warnings) == 1 and "no opt-out mention configured" in summary.warnings[0]


def test_the_mention_counts_in_the_segments(tmp_path: Path) -> None:
    rows = [
        ("A1", "+33612345678", "x" * 146 + " " + MENTION),  # 160 characters: 1 segment
        ("A2", "+33612345679", "x" * 147 + " " + MENTION),  # 161: needs 2 segments
    ]
    spec = replace(CAMPAIGN, optout_mention=MENTION)
    summary = prepare(audience(tmp_path, rows), spec, tmp_path / "o")
    assert rejects(tmp_path / "o") == {"A2": "MSG_TOO_LONG"}
    assert summary.segments == 1
    summary = prepare(tmp_path / "a.csv", replace(spec, long_sms=True), tmp_path / "p")
    assert (summary.valid, summary.segments) == (2, 3)


# --- the account's options --------------------------------------------------------------


def test_an_account_refuses_what_it_does_not_allow(tmp_path: Path) -> None:
    path = audience(tmp_path, MENTION_ROWS[:1])
    with pytest.raises(InputError, match="no long SMS option") as caught:
        prepare(path, replace(CAMPAIGN, long_sms=True), tmp_path / "o", account=Account())
    assert caught.value.field == "long_sms"
    with pytest.raises(InputError, match="no Unicode option") as caught:
        prepare(path, replace(CAMPAIGN, encoding_policy="ucs2"), tmp_path / "o", account=Account())
    assert caught.value.field == "encoding_policy"
    allowed = Account(long_sms=True, unicode=True, optout_short_code="36111")
    spec = replace(CAMPAIGN, long_sms=True, encoding_policy="ucs2")
    assert prepare(path, spec, tmp_path / "o", account=allowed).valid == 1


# --- frequency caps ---------------------------------------------------------------------

CAP_ROWS = [
    ("A1", "+33612345678", MENTION),
    ("A2", "+33612345679", MENTION),
    ("A3", "+33612345680", MENTION),
    ("A4", "0612345679", MENTION),  # A2's number again: capped, not a duplicate
    ("A5", "+33612345681", MENTION),
]
CAPPED = np.array([33612345681, 33612345679, 33699999999], dtype=np.int64)


def test_numbers_at_the_cap_are_rejected_and_counted(tmp_path: Path) -> None:
    path = audience(tmp_path, CAP_ROWS)
    spec = replace(CAMPAIGN, frequency_cap="3/7")
    summary = prepare(path, spec, tmp_path / "o", capped=CAPPED, batch_size=2)
    assert rejects(tmp_path / "o") == {
        "A2": "FREQUENCY_CAPPED",
        "A4": "FREQUENCY_CAPPED",
        "A5": "FREQUENCY_CAPPED",
    }
    assert sent(tmp_path / "o") == ["A1", "A3"]
    assert (summary.frequency_capped, summary.valid, summary.rejected) == (3, 2, 3)
    assert "frequency capped 3" in summary_lines(summary.as_dict())
    # An opted-out number is OPTED_OUT first; a transactional campaign is not capped.
    optouts = pd.Series(["+33612345681"], dtype="string[pyarrow]")
    summary = prepare(path, spec, tmp_path / "p", capped=CAPPED, optouts=optouts)
    assert summary.rejects_by_reason == {"FREQUENCY_CAPPED": 2, "OPTED_OUT": 1}
    summary = prepare(path, replace(spec, transactional=True), tmp_path / "q", capped=CAPPED)
    assert (summary.frequency_capped, summary.rejects_by_reason) == (0, {"MSISDN_DUPLICATE": 1})


def test_a_misspelt_cap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="MESSAGES/DAYS") as caught:
        prepare(audience(tmp_path, CAP_ROWS), replace(CAMPAIGN, frequency_cap="3 a week"), tmp_path)
    assert caught.value.field == "frequency_cap"


# --- cost and budget --------------------------------------------------------------------

COST_ROWS = [
    ("A1", "+33612345678", "Bonjour"),  # FR gsm7 1
    ("A2", "+33612345679", "Bonsoir"),  # FR gsm7 1
    ("A3", "+33612345680", "y" * 200),  # FR gsm7 2 (long SMS)
    ("A4", "+32470123456", "Hallo"),  # BE gsm7 1
    ("A5", "+447400123456", "你好"),  # GB (the default price) ucs2 1
    ("A6", "+33612345681", "你好"),  # FR ucs2 1
    ("A7", "not a number", "Bonjour"),  # rejected: costs nothing
]
COST = {
    "currency": "EUR",
    "total": 0.395,
    "by_country": {"BE": 0.07, "FR": 0.225, "GB": 0.1},
    "by_encoding": {"gsm7": 0.25, "ucs2": 0.145},
}
COSTLY = replace(CAMPAIGN, long_sms=True, encoding_policy="ucs2", transactional=True)


def test_the_estimate_is_the_kept_segments_times_their_price(tmp_path: Path) -> None:
    summary = prepare(audience(tmp_path, COST_ROWS), COSTLY, tmp_path / "o", prices=PRICES)
    assert (summary.valid, summary.segments) == (6, 7)
    assert summary.cost == COST
    assert summary.frequency_capped == 0
    assert (
        "estimated cost 0.395 EUR; by country "
        '{"BE": 0.07, "FR": 0.225, "GB": 0.1}; by encoding {"gsm7": 0.25, "ucs2": 0.145}'
    ) in summary_lines(summary.as_dict())
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["cost"] == COST
    assert prepare(tmp_path / "a.csv", COSTLY, tmp_path / "p").cost is None  # no price list


def test_over_budget_nothing_is_left_to_send(tmp_path: Path) -> None:
    path = audience(tmp_path, COST_ROWS)
    with pytest.raises(BudgetExceeded) as caught:
        prepare(path, replace(COSTLY, max_cost="0.39"), tmp_path / "o", prices=PRICES)
    assert str(caught.value) == (
        "field max_cost: the estimated cost 0.40 EUR is over the cap max_cost=0.39 EUR: "
        "nothing was sent; raise max_cost or narrow the audience"
    )
    assert list((tmp_path / "o").iterdir()) == []
    summary = prepare(path, replace(COSTLY, max_cost="0.395"), tmp_path / "o", prices=PRICES)
    assert summary.cost == COST and len(summary.files) == 1  # at the cap is within it
    with pytest.raises(InputError, match="needs a price list"):
        prepare(path, replace(COSTLY, max_cost="10"), tmp_path / "p")
    with pytest.raises(InputError, match="an amount such as 250") as caught:
        prepare(path, replace(COSTLY, max_cost="ten"), tmp_path / "p", prices=PRICES)
    assert caught.value.field == "max_cost"


def test_a_dry_run_over_budget_shows_the_stop_and_sends_nothing_anyway(tmp_path: Path) -> None:
    dry = replace(COSTLY, max_cost="0.39", dry_run=True)
    summary = prepare(audience(tmp_path, COST_ROWS), dry, tmp_path / "o", prices=PRICES)
    assert summary.cost == COST
    assert (
        "budget stop (dry run): the estimated cost 0.40 EUR is over the cap max_cost=0.39 EUR: "
        "nothing was sent; raise max_cost or narrow the audience"
    ) in summary.warnings


def test_an_unlisted_country_without_a_default_stops_the_estimate(tmp_path: Path) -> None:
    strict = PriceList.from_mapping({"currency": "EUR", "countries": {"FR": 0.045}}, "p.yaml")
    with pytest.raises(InputError, match="no price for 'BE'|no price for BE") as caught:
        prepare(audience(tmp_path, COST_ROWS), COSTLY, tmp_path / "o", prices=strict)
    assert caught.value.file == "p.yaml"
    assert not list((tmp_path / "o").glob("SEND-*"))


# --- the CLI ----------------------------------------------------------------------------


#: The campaign of every CLI run here: long SMS and UCS-2 allowed, so COST_ROWS all pass.
CLI_CAMPAIGN = {
    "--service-id": "12345",
    "--campaign": "promo",
    "--sender": "Shop",
    "--message": "{body}",
    "--encoding-policy": "ucs2",
}


def cli_prepare(path: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    options = [part for pair in CLI_CAMPAIGN.items() for part in pair]
    return smsdrop("prepare", str(path), *options, "--long-sms", "--out", str(out), *extra)


def test_cli_prepare_shows_the_cost_and_stops_over_budget(tmp_path: Path) -> None:
    path = audience(tmp_path, COST_ROWS)
    prices = tmp_path / "prices.yaml"
    prices.write_text("currency: EUR\ndefault: 0.10\ncountries: {FR: 0.045, BE: 0.07}\n")
    result = cli_prepare(path, tmp_path / "o", "--prices", str(prices), "--transactional", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["cost"], summary["frequency_capped"]) == (COST, 0)
    human = cli_prepare(path, tmp_path / "h", "--prices", str(prices), "--transactional")
    assert "  cost         0.395 EUR; BE 0.07, FR 0.225, GB 0.1; gsm7 0.25, ucs2 0.145" in (
        human.stdout
    )
    stopped = cli_prepare(path, tmp_path / "s", "--prices", str(prices), "--max-cost", "0.3")
    assert stopped.returncode == 1
    assert stopped.stdout == ""
    assert stopped.stderr == (
        "smsdrop prepare: field max_cost: the estimated cost 0.40 EUR is over the cap "
        "max_cost=0.3 EUR: nothing was sent; raise max_cost or narrow the audience\n"
    )
    assert not list((tmp_path / "s").glob("SEND-*"))


def test_cli_prepare_default_prices_and_mention(tmp_path: Path) -> None:
    path = audience(tmp_path, MENTION_ROWS)
    result = cli_prepare(path, tmp_path / "o", "--optout-mention", MENTION, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rejects_by_reason"] == {"MSG_NO_OPTOUT_MENTION": 3}
    # include/prices.yaml (the example): FR 0.045 × 2, BE 0.07 × 1.
    assert summary["cost"]["total"] == 0.16 and summary["cost"]["currency"] == "EUR"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("currency: EUR\ncountries: {FR: [1]}\n", "field countries.FR: must be a price"),
        ("currency: EUR\ncountries: {FR: 0.1\n", ":3: not valid YAML"),
        ("currency: euro\n", "field currency: must be a 3-letter currency code"),
    ],
)
def test_cli_prepare_bad_price_list_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(text)
    result = cli_prepare(audience(tmp_path, COST_ROWS), tmp_path / "o", "--prices", str(prices))
    assert result.returncode == 1  # as every InputError (2 is for usage errors)
    assert result.stderr.startswith(f"smsdrop prepare: {prices}")
    assert expected in result.stderr and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()  # refused before any audience row


def test_cli_usage_errors_for_the_new_flags(tmp_path: Path) -> None:
    path = audience(tmp_path, COST_ROWS)
    for flag, value in (("--max-cost", "lots"), ("--max-cost", "-1"), ("--optout-mention", " ")):
        result = cli_prepare(path, tmp_path / "o", flag, value)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (flag, value)


def test_cli_check_with_the_mention(tmp_path: Path) -> None:
    send = tmp_path / "SEND-12345-20261130-1000-promo.csv"
    send.write_bytes(
        b"A1;+33612345678;Shop;Promo STOP au 36111\r\n"
        b"A2;+33612345679;Shop;Promo\r\n"
        b"A3;+32470123456;Shop;Promo\r\n"
    )
    assert smsdrop("check", str(send)).stdout == f"{send}: OK, 3 records\n"
    result = smsdrop("check", str(send), "--optout-mention", "stop au 36 111", "--json")
    assert result.returncode == 1
    problems = json.loads(result.stdout)["files"][0]["problems"]
    assert problems == [
        {
            "reason": "MSG_NO_OPTOUT_MENTION",
            "detail": "",
            "record": 2,
            "line": 2,
            "field": "MSG",
        }
    ]
