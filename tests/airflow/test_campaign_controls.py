"""Issue 12 on the DAG: alerts by mail through a campaign run, ACK thresholds, the budget
stop, the lock deadline, the send history. Real ``dag.test()`` runs against the sandbox
(DuckDB: the warehouse side is tested on both engines in tests/warehouse), mail through a
real SMTP server on loopback (aiosmtpd)."""

# ruff: noqa: F811  (the fixtures imported below are the tests' arguments)
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from smsdrop.sandbox import Sandbox
from tests.airflow.support import task_states, xcom
from tests.airflow.test_alerting import Inbox, _body, inbox  # noqa: F401  (a fixture)
from tests.airflow.test_sms_campaign import (  # noqa: F401  (fixtures)
    CONF,
    _query,
    _run,
    campaign,
    sandbox,
    slot,
)

pytestmark = pytest.mark.usefixtures("airflow_db")
DUCKDB = pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
MAIL = {"alert_connections": "smsdrop_mail"}
#: A phone number in any spelling (9+ digits in a row, or + and spaced digits): never in a
#: mail. Counts are written with thousands separators, file names cut their digits by "-".
NUMBER_LIKE = re.compile(r"[0-9]{9,}|\+[0-9][0-9 .]{7,}")


def _mails(inbox: Inbox) -> list[tuple[str, str]]:
    return [(str(mail["Subject"]), _body(mail)) for _, mail in inbox.mails]


def _no_personal_data(mails: list[tuple[str, str]]) -> None:
    for subject, body in mails:
        text = subject + body
        assert not NUMBER_LIKE.search(text), subject
        assert "ce samedi" not in text and "Bonjour" not in text, subject


@pytest.mark.slow
@DUCKDB
def test_a_run_mails_its_notices_records_its_history_and_fails_under_a_threshold(
    sandbox: Sandbox, campaign: dict[str, Any], inbox: Inbox
) -> None:
    run = _run(
        sandbox,
        campaign_id="notices",
        min_delivery_rate="100",  # the sandbox never delivers everything: under it
        max_not_sent_rate="off",
        max_stop_rate="off",
        **MAIL,
    )
    states = {t: s for t, (s, _) in task_states(run).items()}
    assert str(run.state) == "failed"
    assert states["record_outcome"] == "success" and states["load_acks"] == "failed", states
    assert states["tidy_remote"] == "upstream_failed" and states["remove_staged"] == "success"

    summary = xcom(run, "prepare")["summary"]
    files = sorted(f["name"] for f in summary["files"])
    mails = _mails(inbox)
    subjects = [s for s, _ in mails]
    accepted = sorted(s for s in subjects if s.endswith(" accepted"))
    assert accepted == [f"[smsdrop ok] campaign notices: {name} accepted" for name in files]
    programmed = f"[smsdrop ok] campaign notices: {summary['valid']:,} SMS programmed"
    assert subjects.count(programmed) == 1
    stats = _query("SELECT * FROM sms_campaign_stats WHERE campaign_id = %s", "notices")
    sent, delivered = int(stats["sent"].iloc[0]), int(stats["delivered"].iloc[0])
    rate = delivered / sent
    assert sent == summary["valid"] and delivered < sent
    below = f"[smsdrop FAILED] campaign notices: delivery rate {rate:.1%} below 100.0%"
    assert subjects.count(below) == 1
    assert len(mails) == len(files) + 2  # no second mail for load_acks' failure
    body = dict(mails)[below]
    assert f"sent {sent:,}, delivered {delivered:,}" in body
    _no_personal_data(mails)

    # The send history: every number of every file, once; the estimate of the summary.
    history = _query(
        "SELECT send_file, count(*) AS n, count(DISTINCT msisdn) AS d FROM sms_send_history"
        " WHERE campaign_id = %s GROUP BY send_file ORDER BY send_file",
        "notices",
    )
    assert history["send_file"].tolist() == files
    rows = {f["name"]: f["rows"] for f in summary["files"]}
    assert history["n"].astype(int).tolist() == [rows[n] for n in files]
    assert history["d"].astype(int).tolist() == history["n"].astype(int).tolist()
    recorded = _query(
        "SELECT estimated_cost, cost_currency FROM sms_campaigns WHERE campaign_id = %s",
        "notices",
    )
    assert float(recorded["estimated_cost"].iloc[0]) == summary["cost"]["total"] > 0
    assert recorded["cost_currency"].tolist() == ["EUR"]
    assert summary["cost"]["by_country"]["FR"] == round(
        0.045 * summary["countries"]["FR"] * summary["segments"] / summary["valid"], 4
    )

    # Idempotent on retry: the history of a file recorded again adds nothing.
    from smsdrop.airflow.warehouse import warehouse_from_connection

    with warehouse_from_connection() as warehouse:
        for name in files:
            numbers = _query("SELECT msisdn FROM sms_send_history WHERE send_file = %s", name)
            again = warehouse.record_send_history(
                name,
                "notices",
                datetime.fromisoformat(summary["send_at"]),
                numbers["msisdn"].to_numpy(),
            )
            assert again == 0


@DUCKDB
def test_a_budget_stop_uploads_nothing_and_says_why(
    sandbox: Sandbox, campaign: dict[str, Any], inbox: Inbox
) -> None:
    run = _run(sandbox, campaign_id="budget", max_cost="1", **MAIL)
    states = {t: s for t, (s, _) in task_states(run).items()}
    assert str(run.state) == "failed"
    assert states["prepare"] == "failed" and states["upload"] == "upstream_failed", states
    assert states["remove_staged"] == "success"
    assert not sandbox.events("file_received")
    assert not any(p.is_file() for p in campaign["staging"].rglob("*"))
    [(subject, body)] = _mails(inbox)
    assert subject == "[smsdrop FAILED] campaign budget: task prepare failed"
    found = re.search(r"budget stop: the estimated cost ([0-9.]+) EUR is over the cap", body)
    assert found and float(found[1]) > 1, body
    assert "max_cost=1 EUR: nothing was sent" in body
    assert "Nothing was uploaded for this campaign." in body
    files = _query("SELECT count(*) AS n FROM sms_campaign_files WHERE campaign_id = 'budget'")
    assert int(files["n"].iloc[0]) == 0
    _no_personal_data(_mails(inbox))


@pytest.fixture
def held(make_sandbox, slot: datetime) -> Sandbox:
    """A provider that leaves every .csv alone for an hour (the sandbox's ``lock_delay``).
    Started before the SMTP server: a sandbox started after it does not come up."""
    return make_sandbox(lock_delay=3600, start=slot)


@pytest.mark.slow
@DUCKDB
def test_a_file_the_provider_never_takes_fails_wait_done_past_the_deadline(
    held: Sandbox,
    connect,
    campaign: dict[str, Any],
    inbox: Inbox,
    capfd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # one file: under dag.test the mapped wait_done tries run one after another, each
    # waiting out the deadline (a minute a file)
    monkeypatch.setattr("smsdrop.airflow.campaign_tasks.MAX_RECORDS", 1_000_000)
    connect(held.port)
    run = _run(held, campaign_id="stuck", lock_deadline_minutes=1, **MAIL)
    states = {t: s for t, (s, _) in task_states(run).items()}
    assert str(run.state) == "failed"
    assert states["wait_done"] == "failed" and states["upload"] == "success", states
    assert states["record_outcome"] == "failed" and states["wait_ack"] == "upstream_failed"
    files = sorted(f["name"] for f in xcom(run, "prepare")["summary"]["files"])
    assert len(files) == 1, files
    text = capfd.readouterr()
    log = text.out + text.err
    for name in files:
        assert f"Send/{name}: {name} is still .csv 1 min after its upload (deadline 1 min" in log
    subjects = [s for s, _ in _mails(inbox)]
    assert "[smsdrop FAILED] campaign stuck: task wait_done failed" in subjects
    assert not held.events("message_sent")


@pytest.mark.parametrize(
    ("extra", "asked", "message"),
    [
        (
            {},
            {"long_sms": True},
            (
                "campaign parameters: field long_sms: the account has no long SMS option "
                "(long_sms extra): 1 segment only"
            ),
        ),
        (
            {"long_sms": True},
            {"long_sms": True, "encoding_policy": "ucs2"},
            (
                "campaign parameters: field encoding_policy: the account has no Unicode option "
                "(unicode extra): transliterate or reject"
            ),
        ),
        (
            {"long_sms": "maybe"},
            {},
            "connection 'mtarget_default' extra long_sms: must be true or false, got maybe",
        ),
    ],
    ids=["long_sms", "ucs2", "bad-extra"],
)
def test_start_refuses_what_the_account_does_not_allow(
    connect, keys, extra: dict, asked: dict, message: str
) -> None:
    """Before any warehouse or provider connection: the account's extras decide."""
    from airflow.sdk.exceptions import AirflowFailException

    from smsdrop.airflow.campaign_tasks import start

    connect(1, **extra)  # a port nobody listens on: nothing is contacted
    with pytest.raises(AirflowFailException) as refused:
        start({**CONF, "send_at": None, **asked}, "manual__t")
    assert str(refused.value) == message


def test_the_contract_task_fails_the_run_on_what_prepare_found(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The contract is checked beside ``prepare``; the ``contract`` task is its gate: every
    count in its log, a broken contract a failure without retry naming the file and check."""
    from airflow.sdk.exceptions import AirflowFailException

    from smsdrop.airflow.campaign_tasks import contract

    def item(expectation: str, unexpected: int) -> dict[str, Any]:
        return {"file": "SEND-1.csv", "expectation": expectation, "column": "msisdn",
                "success": unexpected == 0, "element_count": 4, "unexpected_count": unexpected}  # fmt: skip

    good = {"success": True, "files": 1, "rows": 4,
            "expectations": [item("expect_column_values_to_not_be_null", 0)]}  # fmt: skip
    assert contract({"contract": good}) == good
    broken = {**good, "success": False,
              "expectations": [*good["expectations"], item("expect_msisdn_unique_within_file", 2)]}  # fmt: skip
    with caplog.at_level("INFO"), pytest.raises(AirflowFailException) as failed:
        contract({"contract": broken})
    assert str(failed.value) == (
        "data contract broken: SEND-1.csv: expect_msisdn_unique_within_file(msisdn) failed "
        "for 2 of 4 rows"
    )
    assert "contract SEND-1.csv expect_msisdn_unique_within_file(msisdn): FAILED, 2" in caplog.text
    with pytest.raises(AirflowFailException, match="prepare the campaign again"):
        contract({"summary without": "a contract"})
