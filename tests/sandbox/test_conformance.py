"""The sandbox against the provider's spec, section by section (../shared/spec/mtarget-sftp.md).

Each test quotes the sentence it checks. Files go in over SFTP (asyncssh client) exactly as
a client would; the event log is the oracle of what was sent.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import asyncssh
import pytest

from smsdrop.reports import parse_ack, parse_replies
from smsdrop.sandbox import STATUSES, Outcome
from smsdrop.sandbox.replies import is_stop
from tests.sandbox.conftest import (
    START,
    Keys,
    MakeSandbox,
    listing,
    mobiles,
    records,
    run_sftp,
    upload,
)

NOW_NAME = "SEND-12345-20261201-0800-now.csv"  # 08:00 Paris: in the past at START (09:00)


def done(sandbox, name: str, timeout: float = 30.0) -> dict:
    """Wait for the file's verdict; returns its file_done or file_rejected event."""
    return sandbox.wait_for_first(("file_done", "file_rejected"), timeout, name=name)


def verdict(sandbox, keys: Keys, name: str, data: bytes) -> dict:
    upload(sandbox, keys.ed25519, name, data)
    return done(sandbox, name)


def sent(sandbox, name: str) -> list[dict]:
    return sandbox.events("message_sent", file=name) + sandbox.events("message_not_sent", file=name)


# --- "The SFTP is set up with 2 directories: Send, Report" -------------------------------


def test_two_directories_and_nothing_else_visible(sandbox, keys: Keys) -> None:
    async def names(sftp: asyncssh.SFTPClient) -> list[str]:
        return sorted(await sftp.listdir("/"))

    assert run_sftp(sandbox, keys.ed25519, names) == [".", "..", "Report", "Send"]


# --- "We have a SFTP server with IP filtering" / "RSA authentication" -------------------


def test_listed_ip_and_keys_are_accepted_ed25519_and_rsa(sandbox, keys: Keys) -> None:
    for key in (keys.ed25519, keys.rsa):
        run_sftp(sandbox, key, lambda sftp: sftp.listdir("Send"))
    accepted = sandbox.events("auth_accepted")
    assert [e["method"] for e in accepted] == ["publickey", "publickey"]
    assert len({e["key"] for e in accepted}) == 2


def test_unknown_ip_is_refused_and_logged(sandbox, keys: Keys) -> None:
    with pytest.raises((OSError, asyncssh.Error)):
        run_sftp(
            sandbox, keys.ed25519, lambda sftp: sftp.listdir("Send"), local_addr=("127.0.0.2", 0)
        )
    refused = sandbox.wait_for("connection_refused")
    assert refused[0]["peer"] == "127.0.0.2"
    assert not sandbox.events("auth_accepted")


def test_allow_list_takes_networks(make_sandbox: MakeSandbox, keys: Keys) -> None:
    sandbox = make_sandbox(allow_ips=("127.0.0.0/30",))
    run_sftp(sandbox, keys.ed25519, lambda sftp: sftp.listdir("Send"), local_addr=("127.0.0.2", 0))
    assert sandbox.events("auth_accepted")[0]["peer"] == "127.0.0.2"


# --- "File uploading: … add the .tmp extension … change the file extension to .csv.
#      The file processing will then get started and we will add the .lock extension." ---


def test_csv_goes_lock_then_done_and_tmp_is_never_taken(sandbox, keys: Keys) -> None:
    upload(
        sandbox,
        keys.ed25519,
        "SEND-12345-20261201-0800-wait.csv",
        records(mobiles(1)),
        rename=False,
    )  # stays .tmp
    event = verdict(sandbox, keys, NOW_NAME, records(mobiles(3)))
    assert event["kind"] == "file_done" and event["records"] == 3
    kinds = [e["kind"] for e in sandbox.events() if e.get("name") == NOW_NAME]
    assert kinds == ["file_received", "file_locked", "file_done"]
    # The scan that took the .csv saw the .tmp too, and left it.
    assert listing(sandbox) == [
        "SEND-12345-20261201-0800-now.done",
        "SEND-12345-20261201-0800-wait.tmp",
    ]
    assert not sandbox.events("file_received", name="SEND-12345-20261201-0800-wait.tmp")


# --- "Be careful: files that are not uploaded in the SEND directory will not be processed"


def test_csv_outside_send_is_ignored(sandbox, keys: Keys) -> None:
    """A client cannot put a file anywhere else (only Send/ is writable, no folder can be
    made); a .csv that gets there by other means (a sub-folder of Send/) is not taken."""
    sub = sandbox.layout.send / "sub"
    sub.mkdir()
    (sub / "SEND-12345-20261201-0800-c.csv").write_bytes(records(mobiles(1)))

    async def elsewhere(sftp: asyncssh.SFTPClient) -> None:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.mkdir("Send/other")
        for path in (
            "Report/SEND-12345-20261201-0800-a.csv",
            "SEND-12345-20261201-0800-b.csv",
            "Send/sub/SEND-12345-20261201-0800-c.csv",
        ):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.open(path, "wb")

    run_sftp(sandbox, keys.ed25519, elsewhere)
    verdict(sandbox, keys, NOW_NAME, records(mobiles(1)))  # a scan has run since
    assert listing(sandbox, "Report") == []
    assert listing(sandbox, "Send/sub") == ["SEND-12345-20261201-0800-c.csv"]
    assert not (sandbox.layout.root / "SEND-12345-20261201-0800-b.csv").exists()
    assert [e["name"] for e in sandbox.events("file_received")] == [NOW_NAME]


# --- "Compliant file … .done" / "Non-compliant file … .reject … no SMS will be sent" -----


def test_compliant_file_is_done_and_every_message_sent_once(sandbox, keys: Keys) -> None:
    event = verdict(sandbox, keys, NOW_NAME, records(mobiles(50)))
    assert event["kind"] == "file_done"
    sandbox.wait_for("batch_done", file=NOW_NAME)
    messages = sent(sandbox, NOW_NAME)
    assert sorted(m["row"] for m in messages) == list(range(1, 51))
    assert len({m["msisdn"] for m in messages}) == 50


def test_non_compliant_file_is_rejected_with_reason_and_nothing_sent(sandbox, keys) -> None:
    rows = mobiles(3)
    rows[1] = ("C1", "0612345678", "SHOP", "national number")  # not international format
    event = verdict(sandbox, keys, NOW_NAME, records(rows))
    assert event["kind"] == "file_rejected"
    assert event["reasons"] == {"MSISDN_INVALID": 1}
    assert event["problems"][0] == {
        "reason": "MSISDN_INVALID",
        "record": 2,
        "line": 2,
        "field": "MSISDN",
    }
    assert listing(sandbox) == ["SEND-12345-20261201-0800-now.reject"]
    sandbox.advance(timedelta(days=5))
    sandbox.settle()
    assert not sent(sandbox, NOW_NAME) and listing(sandbox, "Report") == []


# --- "File formatting" -------------------------------------------------------------------

BAD_FILES = {
    "header": (b"IDREMOTE;MSISDN;OADC;MSG\r\n" + records(mobiles(2)), "MSISDN_INVALID"),
    "three fields": (b"C1;+33612345678;SHOP\r\n", "RECORD_MALFORMED"),
    "five fields": (b"C1;+33612345678;SHOP;hi;extra\r\n", "RECORD_MALFORMED"),
    "duplicate": (records([mobiles(1)[0], ("C9", *mobiles(1)[0][1:])]), "MSISDN_DUPLICATE"),
    "not utf-8": ("C1;+33612345678;SHOP;Hélène\r\n".encode("latin-1"), "ENCODING_INVALID"),
    "idremote 41": (records([("A" * 41, "+33612345678", "SHOP", "hi")]), "IDREMOTE_INVALID"),
    "idremote accent": (records([("Café1", "+33612345678", "SHOP", "hi")]), "IDREMOTE_INVALID"),
    "oadc 12": (records([("C1", "+33612345678", "A" * 12, "hi")]), "OADC_INVALID"),
    "empty message": (records([("C1", "+33612345678", "SHOP", "")]), "MSG_EMPTY"),
    "161 chars": (records([("C1", "+33612345678", "SHOP", "a" * 161)]), "MSG_TOO_LONG"),
    "empty file": (b"", "FILE_EMPTY"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_file_formatting_rules_reject(sandbox, keys: Keys, case: str) -> None:
    data, reason = BAD_FILES[case]
    event = verdict(sandbox, keys, NOW_NAME, data)
    assert event["kind"] == "file_rejected", event
    assert reason in event["reasons"], event


def test_more_records_than_allowed_is_rejected(make_sandbox: MakeSandbox, keys: Keys) -> None:
    sandbox = make_sandbox(max_records=3)  # the provider's 1,000,000, scaled down
    assert verdict(sandbox, keys, NOW_NAME, records(mobiles(3)))["kind"] == "file_done"
    other = "SEND-12345-20261201-0800-four.csv"
    event = verdict(sandbox, keys, other, records(mobiles(4)))
    assert event["reasons"] == {"TOO_MANY_RECORDS": 1}


def test_rfc4180_quoting_and_the_spec_example_line_are_accepted(sandbox, keys: Keys) -> None:
    data = (
        "VSQR0339;+33787798753;Logement; 4P 79m2 3ème étage Imm ancien 2Chbres Volumes vue "
        "Parfait état http://www.URL.com/fr/ref-VSQR0339 \r\n"
        'C2;+33612345678;SHOP;"Soldes ; -20% ""cette"" semaine"\r\n'
        "C3;+33612345679;SHOP;LF line end and no final newline"
    ).encode()
    assert verdict(sandbox, keys, NOW_NAME, data)["kind"] == "file_done"


def test_non_gsm_characters_are_replaced_not_rejected(sandbox, keys: Keys) -> None:
    """ "The characters that are not received will automatically be replaced." """
    rows = [("C1", "+33612345678", "SHOP", "Fête à Noël, forêt: 70 % ✓ " + "x" * 120)]
    assert verdict(sandbox, keys, NOW_NAME, records(rows))["kind"] == "file_done"
    sandbox.wait_for("batch_done", file=NOW_NAME)
    assert sandbox.events("message_sent")[0]["segments"] == 1  # GSM-7, not UCS-2


def test_character_count_with_long_sms_option(make_sandbox: MakeSandbox, keys: Keys) -> None:
    """ "€ [ ] { } count as double"; "up to 5 * 153 GSM characters" with long SMS."""
    sandbox = make_sandbox(long_sms=True)
    rows = [
        ("C1", "+33612345678", "SHOP", "€" * 80),  # 160 septets: 1 segment
        ("C2", "+33612345679", "SHOP", "a" * 160 + "€"),  # 162: 2 segments
        ("C3", "+33612345670", "SHOP", "a" * 765),  # 5 segments
    ]
    assert verdict(sandbox, keys, NOW_NAME, records(rows))["kind"] == "file_done"
    sandbox.wait_for("batch_done", file=NOW_NAME)
    assert [e["segments"] for e in sandbox.events("message_sent")] == [1, 2, 5]
    too_long = "SEND-12345-20261201-0800-long.csv"
    event = verdict(sandbox, keys, too_long, records([("C4", "+33612345671", "S", "a" * 766)]))
    assert event["reasons"] == {"MSG_TOO_LONG": 1}


def test_landline_is_sent_and_fails_at_the_operator(sandbox, keys: Keys) -> None:
    rows = [("C1", "+33612345678", "SHOP", "hi"), ("C2", "+33144556677", "SHOP", "hi")]
    assert verdict(sandbox, keys, NOW_NAME, records(rows))["kind"] == "file_done"
    sandbox.wait_for("batch_done", file=NOW_NAME)
    by_row = {e["row"]: e["status"] for e in sandbox.events("message_sent")}
    assert by_row[2] == "failed"


# --- "File name: SEND-SERVICEID-DATE-HOUR-CAMPAIGNID.csv" --------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "SEND12345-20261201-0800-testpushsftp.csv",  # the spec's own typo
        "SEND-1234-20261201-0800-promo.csv",  # SERVICEID of 4
        "SEND-12345-20261301-0800-promo.csv",  # month 13
        "SEND-12345-20261201-2460-promo.csv",  # minute 60
        "SEND-12345-20261201-0800-promo_1.csv",  # not alphanumeric
        "SEND-12345-20261201-0800-abcdefghijklmnopqrstu.csv",  # 21 characters
        "ACK-12345-20261201-0800-promo.csv",  # not a SEND file
        "campaign.csv",
    ],
)
def test_file_name_rules_reject(sandbox, keys: Keys, name: str) -> None:
    event = verdict(sandbox, keys, name, records(mobiles(1)))
    assert event["kind"] == "file_rejected"
    assert set(event["reasons"]) == {"NAME_INVALID"}
    assert listing(sandbox) == [name[: -len(".csv")] + ".reject"]


def test_service_id_of_another_account_is_rejected(make_sandbox: MakeSandbox, keys) -> None:
    sandbox = make_sandbox(service_id="12345")
    assert verdict(sandbox, keys, NOW_NAME, records(mobiles(1)))["kind"] == "file_done"
    event = verdict(sandbox, keys, "SEND-99999-20261201-0800-x.csv", records(mobiles(1)))
    assert event["reasons"] == {"SERVICEID_UNKNOWN": 1}


# --- "Schedule sending" / "a date in the past … sent immediately" ------------------------


def test_scheduled_time_in_paris_is_when_messages_go(sandbox, keys: Keys) -> None:
    name = "SEND-12345-20261201-1430-later.csv"  # 14:30 Paris, 5h30 after START
    verdict(sandbox, keys, name, records(mobiles(2)))
    sandbox.advance(timedelta(hours=5, minutes=29))
    sandbox.settle()
    assert not sent(sandbox, name)
    sandbox.advance(timedelta(minutes=1))
    sandbox.wait_for("batch_done", file=name)
    assert {e["at"] for e in sent(sandbox, name)} == {"2026-12-01T13:30:00+00:00"}


def test_past_time_sends_immediately(sandbox, keys: Keys) -> None:
    name = "SEND-12345-20200101-1000-old.csv"
    verdict(sandbox, keys, name, records(mobiles(1)))
    batch = sandbox.wait_for("batch_done", file=name)[0]
    assert datetime.fromisoformat(batch["at"]) - START < timedelta(minutes=1)


# --- "Side note: … you will not be able to modify or cancel a campaign already scheduled by
#      re-uploading a different version of the initial file." ----------------------------


def test_same_name_again_is_not_processed_again(sandbox, keys: Keys) -> None:
    verdict(sandbox, keys, NOW_NAME, records(mobiles(2)))
    upload(sandbox, keys.ed25519, NOW_NAME, records(mobiles(5, start=100)))
    sandbox.wait_for("file_ignored", name=NOW_NAME)
    assert listing(sandbox) == [
        "SEND-12345-20261201-0800-now.csv",
        "SEND-12345-20261201-0800-now.done",
    ]
    sandbox.advance(timedelta(days=2))
    sandbox.settle()
    assert len(sent(sandbox, NOW_NAME)) == 2
    assert len(sandbox.events("file_locked", name=NOW_NAME)) == 1


def test_processed_names_survive_a_restart(make_sandbox: MakeSandbox, keys: Keys) -> None:
    first = make_sandbox()
    verdict(first, keys, NOW_NAME, records(mobiles(1)))
    first.stop()
    again = make_sandbox(root=first.config.root)
    upload(again, keys.ed25519, NOW_NAME, records(mobiles(1)))
    again.wait_for("file_ignored", name=NOW_NAME)


# --- "Marketing SMSs are allowed from Monday to Saturday between 8am and 10pm … queued …
#      the next day at 8am (unless sent on Sunday or bank holidays, … rejected)" ---------


def test_due_outside_hours_is_queued_to_next_allowed_8am(sandbox, keys: Keys) -> None:
    name = "SEND-12345-20261205-2300-sat.csv"  # Saturday 23:00 → Monday 08:00
    verdict(sandbox, keys, name, records(mobiles(1)))
    scheduled = sandbox.wait_for("campaign_scheduled", file=name)[0]
    assert scheduled["batches"][0]["at"] == "2026-12-07T07:00:00+00:00"
    assert scheduled["batches"][0]["reason"].startswith("queued")
    sandbox.advance(timedelta(days=7))
    assert sandbox.wait_for("batch_done", file=name)[0]["at"] == "2026-12-07T07:00:00+00:00"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("SEND-12345-20261206-1000-sun.csv", "Sunday"),
        ("SEND-12345-20261225-1000-xmas.csv", "public holiday"),
    ],
)
def test_due_on_sunday_or_holiday_is_rejected_per_message_file_done(
    sandbox, keys: Keys, name: str, why: str
) -> None:
    rows = mobiles(2) + [("UK1", "+447400123456", "SHOP", "Hello from France")]
    assert verdict(sandbox, keys, name, records(rows))["kind"] == "file_done"
    sandbox.advance(timedelta(days=30))
    ack = sandbox.wait_for("report_written", file=name)[0]
    data = (sandbox.layout.report / ack["name"]).read_bytes()
    frame = parse_ack(data, ack["name"])
    rejected = STATUSES[Outcome.REJECTED]
    assert frame["status"].tolist()[:2] == ["rejected", "rejected"]
    assert frame["idstatus"].tolist()[:2] == [rejected.idstatus] * 2
    assert frame["status"].tolist()[2] != "rejected"  # no French window for a UK number
    batches = sandbox.events("campaign_scheduled", file=name)[0]["batches"]
    assert [why in b["reason"] for b in batches if b["rejected"]] == [True]
    not_sent = sandbox.events("message_not_sent", file=name)
    assert [e["credits"] for e in not_sent] == [0, 0]


def test_transactional_account_has_no_window(make_sandbox: MakeSandbox, keys: Keys) -> None:
    sandbox = make_sandbox(marketing=False)
    name = "SEND-12345-20261206-1000-sun.csv"
    verdict(sandbox, keys, name, records(mobiles(1)))
    sandbox.advance(timedelta(days=6))
    assert sandbox.wait_for("batch_done", file=name)[0]["statuses"] != {"rejected": 1}


def test_window_end_is_configurable(make_sandbox: MakeSandbox, keys: Keys) -> None:
    from datetime import time

    sandbox = make_sandbox(window_end=time(20))
    name = "SEND-12345-20261201-2030-late.csv"
    verdict(sandbox, keys, name, records(mobiles(1)))
    scheduled = sandbox.wait_for("campaign_scheduled", file=name)[0]
    assert scheduled["batches"][0]["at"] == "2026-12-02T07:00:00+00:00"


# --- "Balance: Your account will be debited at the time the message is sent (and not at
#      the scheduling time) … partially or not at all sent." ----------------------------


def test_balance_is_debited_at_send_time_and_the_rest_is_not_sent(make_sandbox, keys) -> None:
    sandbox = make_sandbox(balance=5, long_sms=True)
    later = "SEND-12345-20261201-1000-later.csv"
    verdict(sandbox, keys, later, records(mobiles(2, start=50)))
    rows = mobiles(3)
    rows[1] = (rows[1][0], rows[1][1], "SHOP", "a" * 200)  # 2 segments
    verdict(sandbox, keys, NOW_NAME, records(rows))
    sandbox.wait_for("batch_done", file=NOW_NAME)
    assert sandbox.balance == 1  # 1 + 2 + 1 debited now; the later file has not gone yet
    sandbox.advance(timedelta(hours=1))
    batch = sandbox.wait_for("batch_done", file=later)[0]
    assert batch["sent"] == 1 and batch["balance"] == 0
    statuses = [e["status"] for e in sent(sandbox, later)]
    assert statuses[-1] == "no_credit" and statuses.count("no_credit") == 1
    sandbox.advance(timedelta(days=2))
    ack = sandbox.wait_for("report_written", file=later)[0]
    frame = parse_ack((sandbox.layout.report / ack["name"]).read_bytes(), ack["name"])
    assert frame["status"].tolist()[1] == "no_credit"
    assert frame["ackoperator"].tolist()[1] == ""


# --- "Campaign stats: 4 days after for … more than 10 000 SMS. 1 day after for … less" ---


def test_ack_one_day_after_below_10000(sandbox, keys: Keys) -> None:
    verdict(sandbox, keys, NOW_NAME, records(mobiles(9_999)))
    sent_at = datetime.fromisoformat(sandbox.wait_for("batch_done", file=NOW_NAME)[0]["at"])
    sandbox.clock.advance_to(sent_at + timedelta(days=1) - timedelta(seconds=1))
    sandbox.settle()
    assert not [n for n in listing(sandbox, "Report") if n.startswith("ACK")]
    sandbox.advance(timedelta(seconds=1))
    ack = sandbox.wait_for("report_written", file=NOW_NAME)[0]
    assert datetime.fromisoformat(ack["at"]) == sent_at + timedelta(days=1)
    assert ack["name"] == "ACK-12345-20261201-0800-now.csv" and ack["records"] == 9_999


def test_ack_four_days_after_at_10000(sandbox, keys: Keys) -> None:
    verdict(sandbox, keys, NOW_NAME, records(mobiles(10_000)))
    sent_at = datetime.fromisoformat(sandbox.wait_for("batch_done", file=NOW_NAME)[0]["at"])
    sandbox.advance(timedelta(days=3, hours=23))
    sandbox.settle()
    assert not [n for n in listing(sandbox, "Report") if n.startswith("ACK")]
    sandbox.advance(timedelta(hours=1))
    ack = sandbox.wait_for("report_written", file=NOW_NAME)[0]
    assert datetime.fromisoformat(ack["at"]) == sent_at + timedelta(days=4)


def test_ack_has_one_line_per_message_in_file_order(sandbox, keys: Keys) -> None:
    rows = mobiles(200)
    rows[3] = (rows[3][0], rows[3][1], "SHOP", 'Soldes ; "-20%"\nà Noël')  # needs quoting
    verdict(
        sandbox,
        keys,
        NOW_NAME,
        records(rows[:3])
        + (f'{rows[3][0]};{rows[3][1]};SHOP;"Soldes ; ""-20%""\nà Noël"\r\n'.encode())
        + records(rows[4:]),
    )
    sandbox.advance(timedelta(days=1, minutes=1))
    ack = sandbox.wait_for("report_written", file=NOW_NAME)[0]
    frame = parse_ack((sandbox.layout.report / ack["name"]).read_bytes(), ack["name"])
    assert frame["idremote"].tolist() == [r[0] for r in rows]
    assert frame["msisdn"].tolist() == [r[1] for r in rows]
    assert frame["msg"].tolist()[3] == rows[3][3]
    codes = {s.idstatus: o.value for o, s in STATUSES.items()}
    assert all(codes[i] == s for i, s in zip(frame["idstatus"], frame["status"], strict=True))
    events_by_row = {e["row"]: e["status"] for e in sent(sandbox, NOW_NAME)}
    assert frame["status"].tolist() == [events_by_row[i] for i in range(1, 201)]
    operator = frame["ackoperator"].tolist()
    assert len(set(operator)) == 200 and all(len(o) == 36 for o in operator)
    assert Counter(frame["status"])["delivered"] > 150  # default rates: 92 % delivered


# --- "STOP reports … updated in realtime" / "SMS-MO Report … updated in realtime" ---------


def test_replies_are_appended_in_real_time(make_sandbox: MakeSandbox, keys: Keys) -> None:
    sandbox = make_sandbox(stop_rate=0.3, mo_rate=0.3, rates={Outcome.DELIVERED: 1})
    verdict(sandbox, keys, NOW_NAME, records(mobiles(100)))
    sandbox.wait_for("batch_done", file=NOW_NAME)
    smsmo = sandbox.layout.report / "SMSMO-12345-20261201-0800-now.csv"
    stop = sandbox.layout.report / "STOP-12345-20261201-0800-now.csv"
    sizes = []
    for _ in range(6):  # replies arrive over simulated time (mean delay 30 min)
        sandbox.advance(timedelta(minutes=10))
        sandbox.settle()
        sizes.append(smsmo.stat().st_size if smsmo.exists() else 0)
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    sandbox.advance(timedelta(days=2))
    sandbox.settle()
    mo = parse_replies(smsmo.read_bytes(), smsmo.name)
    stops = parse_replies(stop.read_bytes(), stop.name)
    assert 30 < len(mo) < 90 and 10 < len(stops) < len(mo)
    assert all(is_stop(t) for t in stops["message"])
    assert set(stops["msisdn"]) <= set(mo["msisdn"])
    assert set(mo["msisdn"]) <= {r[1] for r in mobiles(100)}
    keywords = {t.strip().split()[0] for t in stops["message"]}
    assert {k for k in keywords if k.islower()} and {k for k in keywords if k.isupper()}
    # DATE/HOUR are the Paris reply time, as logged.
    logged = {(e["msisdn"], e["at"]) for e in sandbox.events("reply_received", stop=True)}
    read = {
        (m, t.tz_convert("UTC").isoformat()[:19])
        for m, t in zip(stops["msisdn"], stops["received_at"], strict=True)
    }
    assert {(m, at[:19]) for m, at in logged} == read


def test_injected_stop_reply_goes_to_both_files(sandbox, keys: Keys) -> None:
    verdict(sandbox, keys, NOW_NAME, records(mobiles(2)))
    sandbox.wait_for("batch_done", file=NOW_NAME)
    event = sandbox.reply(mobiles(2)[1][1], "ARRÊT")
    assert event["stop"] is True and event["idremote"] == mobiles(2)[1][0]
    assert event["reports"] == [
        "SMSMO-12345-20261201-0800-now.csv",
        "STOP-12345-20261201-0800-now.csv",
    ]
    event = sandbox.reply("06 12 00 00 00", "merci")  # national format is normalised
    assert event["stop"] is False and event["reports"] == ["SMSMO-12345-20261201-0800-now.csv"]
    assert sandbox.reply("+33699999999", "STOP")["kind"] == "reply_unmatched"


# --- "We reserve the rights to [delete] any files older than a month" -------------------


def test_files_older_than_30_days_are_deleted(sandbox, keys: Keys) -> None:
    verdict(sandbox, keys, NOW_NAME, records(mobiles(2)))
    sandbox.advance(timedelta(days=1, minutes=1))
    sandbox.wait_for("report_written", file=NOW_NAME)
    sandbox.reply(mobiles(2)[0][1], "STOP")
    sandbox.clock.advance_to(START + timedelta(days=30) - timedelta(minutes=1))
    sandbox.settle()
    assert listing(sandbox) == ["SEND-12345-20261201-0800-now.done"]
    sandbox.advance(timedelta(minutes=2))
    sandbox.wait_for("file_deleted", name="Send/SEND-12345-20261201-0800-now.done")
    assert len(listing(sandbox, "Report")) == 3  # written a day later
    sandbox.advance(timedelta(days=1, minutes=2))
    sandbox.wait_for("file_deleted", count=4)
    assert listing(sandbox) == [] and listing(sandbox, "Report") == []


def test_a_lock_left_by_a_crash_is_checked_at_start(make_sandbox: MakeSandbox, keys) -> None:
    first = make_sandbox()
    first.stop()
    lock = first.layout.send / "SEND-12345-20261201-0800-crash.lock"
    lock.write_bytes(records(mobiles(3)))
    again = make_sandbox(root=first.config.root)
    name = "SEND-12345-20261201-0800-crash.csv"
    assert again.wait_for("file_resumed", name=name)
    assert done(again, name)["kind"] == "file_done"
    assert listing(again) == ["SEND-12345-20261201-0800-crash.done"]
