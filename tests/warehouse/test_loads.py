"""Bulk loads: ACK lines, opt-outs, MO replies, rejects, files, campaigns, offsets.

Reloading the same report changes nothing; every report is real bytes parsed back.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from reportdata import (
    ACK,
    SEND,
    SMSMO,
    STOP,
    ack_bytes,
    ack_frame,
    at,
    replies_frame,
    reply_bytes,
)

from smsdrop.prepare import Summary
from smsdrop.record_rules import REJECT_COLUMNS, Rules, validate
from smsdrop.reports import parse_ack, parse_replies, parse_replies_from, write_ack_line
from smsdrop.warehouse import OPTOUT_KEYWORDS, optout_keyword


def _count(wh, table: str) -> int:
    return int(wh.query_frame(f"SELECT count(*) AS n FROM {table}")["n"][0])


def _snapshot(wh, table: str, order: str) -> list[tuple]:
    frame = wh.query_frame(f"SELECT * FROM {table} ORDER BY {order}")
    return [tuple(r) for r in frame.drop(columns=["loaded_at"], errors="ignore").itertuples()]


def test_ack_load_is_idempotent(warehouse) -> None:
    warehouse.record_file_state(SEND, "done", campaign_id="promo", row_count=10)
    first = warehouse.load_acks(ack_frame(), ACK)
    assert (first.rows, first.new) == (8, 8)
    before = _snapshot(warehouse, "sms_deliveries", "msisdn")
    again = warehouse.load_acks(ack_frame(), f"/some/dir/{ACK}")  # a path: its basename
    assert (again.rows, again.new) == (8, 0)
    assert _snapshot(warehouse, "sms_deliveries", "msisdn") == before


def test_ack_rows_as_stored(warehouse) -> None:
    warehouse.record_file_state(SEND, "done", campaign_id="promo", row_count=10)
    warehouse.load_acks(ack_frame(), ACK)
    rows = warehouse.query_frame("SELECT * FROM sms_deliveries ORDER BY idremote").to_dict(
        "records"
    )
    c1, c3, c6, c8 = rows[0], rows[2], rows[5], rows[7]
    assert c1["file"] == ACK and c1["send_file"] == SEND and c1["campaign_id"] == "promo"
    assert (c1["msisdn"], c1["country"], c1["encoding"], c1["segments"]) == (
        "+33612345601",
        "FR",
        "gsm7",
        1,
    )
    assert c3["segments"] == 2
    assert c6["country"] == "BE"
    assert c8["ackoperator"] is None or pd.isna(c8["ackoperator"])  # empty → NULL
    # the network of the number's range; none known for C8's
    assert (c1["network"], c3["network"], c6["network"]) == ("SFR", "Orange France", "Proximus")
    assert c8["network"] is None or pd.isna(c8["network"])
    assert "msg" not in rows[0]  # message bodies are not stored


def test_an_ack_before_its_file_is_recorded_falls_back_to_the_name(warehouse) -> None:
    warehouse.load_acks(ack_frame(), ACK)
    assert set(warehouse.query_frame("SELECT campaign_id FROM sms_deliveries")["campaign_id"]) == {
        "promo"
    }


def test_an_ack_load_stores_the_send_file_and_campaign_it_is_given(warehouse) -> None:
    # What the caller knows wins over the name: a chunk file's campaign is its parent's.
    warehouse.load_acks(ack_frame(), ACK, send_file=SEND, campaign_id="parent")
    stored = warehouse.query_frame("SELECT DISTINCT send_file, campaign_id FROM sms_deliveries")
    assert stored.to_dict("records") == [{"send_file": SEND, "campaign_id": "parent"}]


def test_an_ack_of_another_send_file_is_refused(warehouse) -> None:
    other = SEND.replace("promo", "other")
    with pytest.raises(ValueError, match="is not the ACK of"):
        warehouse.load_acks(ack_frame(), ACK, send_file=other, campaign_id="promo")
    assert _count(warehouse, "sms_deliveries") == 0


def test_ack_rows_are_the_same_from_the_tolerant_readers_table() -> None:
    from smsdrop.reports import parse_ack_tolerant
    from smsdrop.warehouse import frames

    chunk = parse_ack_tolerant(ack_bytes(), ACK)
    assert isinstance(chunk.table, pa.Table)
    from_table = frames.deliveries_table(chunk.table, ACK, SEND, "promo")
    assert from_table.equals(frames.deliveries_table(ack_frame(), ACK, SEND, "promo"))


def test_stop_report_upserts_optouts_idempotently(warehouse) -> None:
    frame = parse_replies(reply_bytes(), STOP)
    first = warehouse.upsert_optouts(frame, "stop_report", STOP)
    # 3 distinct numbers (one replied twice: its earliest opt-out is kept)
    assert first.new == 3
    before = _snapshot(warehouse, "sms_optouts", "msisdn")
    assert warehouse.upsert_optouts(frame, "stop_report", STOP).new == 0
    assert _snapshot(warehouse, "sms_optouts", "msisdn") == before
    row = warehouse.query_frame("SELECT * FROM sms_optouts WHERE msisdn = '+33612345601'").to_dict(
        "records"
    )[0]
    assert pd.Timestamp(row["received_at"]) == pd.Timestamp(at(1, 10, 30))
    assert (row["source"], row["keyword"], row["file"]) == ("stop_report", "STOP", STOP)
    assert warehouse.optout_numbers().tolist() == [
        "+32470123457",
        "+33612345601",
        "+33612345602",
    ]


def test_optouts_keep_the_earliest_and_normalise_numbers(warehouse) -> None:
    late = pd.DataFrame(
        {"msisdn": ["06 12 34 56 01", "not a number"], "received_at": [at(3, 9), at(3, 9)]}
    )
    assert warehouse.upsert_optouts(late, "import").new == 1
    early = pd.DataFrame({"msisdn": ["+33612345601"], "received_at": [at(2, 9)]})
    assert warehouse.upsert_optouts(early, "stop_report").new == 1  # moved earlier
    assert warehouse.upsert_optouts(late, "import").new == 0  # later: ignored
    rows = warehouse.query_frame("SELECT msisdn, source, received_at FROM sms_optouts")
    assert rows["msisdn"].tolist() == ["+33612345601"]
    assert rows["source"].tolist() == ["stop_report"]
    assert pd.Timestamp(rows["received_at"][0]) == pd.Timestamp(at(2, 9))
    series = warehouse.optout_numbers()
    assert series.name == "msisdn" and str(series.dtype) == "string"


def test_optout_numbers_empty(warehouse) -> None:
    assert warehouse.optout_numbers().tolist() == []


def test_mo_replies_with_a_keyword_are_optouts(warehouse) -> None:
    warehouse.record_file_state(SEND, "done", campaign_id="promo", row_count=10)
    result = warehouse.load_replies(replies_frame(), SMSMO)
    assert (result.rows, result.new, result.optouts) == (4, 4, 2)
    replies = warehouse.query_frame(
        "SELECT msisdn, is_stop, keyword, campaign_id, message FROM sms_replies"
        " ORDER BY received_at"
    )
    assert replies["is_stop"].tolist() == [True, False, True, True]
    assert replies["keyword"].fillna("-").tolist() == ["STOP", "-", "ARRET", "STOP"]
    assert set(replies["campaign_id"]) == {"promo"}
    assert replies["message"][1] == "Merci ; à samedi"
    optouts = warehouse.query_frame("SELECT msisdn, source FROM sms_optouts ORDER BY msisdn")
    assert optouts.values.tolist() == [
        ["+32470123457", "mo_reply"],
        ["+33612345601", "mo_reply"],
    ]
    before = _snapshot(warehouse, "sms_replies", "received_at")
    again = warehouse.load_replies(replies_frame(), SMSMO)
    assert (again.new, again.optouts) == (0, 0)
    assert _snapshot(warehouse, "sms_replies", "received_at") == before


def test_incremental_reply_reads_with_persisted_offsets(warehouse) -> None:
    data = reply_bytes()
    cut = len(data) // 2 + 3  # inside a record
    assert warehouse.get_offset(SMSMO) == 0
    chunk = parse_replies_from(data[:cut], SMSMO, 0)
    warehouse.load_replies(chunk.frame, SMSMO)
    warehouse.set_offset(SMSMO, chunk.next_offset)
    offset = warehouse.get_offset(f"Report/{SMSMO}")
    assert 0 < offset < cut
    rest = parse_replies_from(data[offset:], SMSMO, offset)
    warehouse.load_replies(rest.frame, SMSMO)
    warehouse.set_offset(SMSMO, rest.next_offset)
    assert warehouse.get_offset(SMSMO) == len(data)
    assert _count(warehouse, "sms_replies") == 4
    with pytest.raises(ValueError):
        warehouse.set_offset(SMSMO, -1)


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("STOP", "STOP"),
        ("stop", "STOP"),
        (" Stop merci", "STOP"),
        ("ARRET", "ARRET"),
        ("arrêt", "ARRET"),
        ("ARRÊT", "ARRET"),
        ("ARRE\u0302T", "ARRET"),  # decomposed accent
        ("StopAll", "STOPALL"),
        ("unsubscribe", "UNSUBSCRIBE"),
        ("End.", "END"),
        ("quit", "QUIT"),
        ("Cancel", "CANCEL"),
        ("optout", "OPTOUT"),
        ("REVOKE", "REVOKE"),
        ("non stop", None),
        ("Stopper", None),
        ("endive", None),
        ("Merci !", None),
        ("", None),
    ],
)
def test_optout_keywords(text: str, keyword: str | None) -> None:
    got = optout_keyword(pd.Series([text]))[0]
    assert (None if pd.isna(got) else got) == keyword


def test_keyword_list_is_data() -> None:
    assert "ARRÊT" in OPTOUT_KEYWORDS
    assert optout_keyword(pd.Series(["halt"]), keywords=["HALT"]).tolist() == ["HALT"]


def test_rejects_are_stored_masked_and_idempotent(warehouse) -> None:
    audience = pd.DataFrame(
        {
            "idremote": ["A1", "A2", "A3", "bad key!"],
            "msisdn": ["+33612345601", "+33123456789", "12", "+33612345604"],
            "oadc": ["SHOP"] * 4,
            "msg": ["Hello"] * 4,
            "row": [1, 2, 3, 4],
        }
    )
    rejects = validate(audience, Rules()).rejects
    assert list(rejects.columns) == list(REJECT_COLUMNS) and len(rejects) == 3
    # a caller that forgot to mask: the full number must still never be stored
    careless = pd.concat(
        [
            rejects,
            pd.DataFrame(
                [[9, "A9", "+33612345699", "OPTED_OUT", "MSISDN", ""]], columns=list(REJECT_COLUMNS)
            ),
        ],
        ignore_index=True,
    )
    assert warehouse.save_rejects("promo", careless).new == 4
    assert warehouse.save_rejects("promo", careless).new == 0
    assert warehouse.save_rejects("other", careless).new == 4
    assert warehouse.forget_rejects("promo") == 4  # another attempt starts clean
    assert warehouse.save_rejects("promo", careless).new == 4
    assert warehouse.forget_rejects("other") == 4
    stored = warehouse.query_frame(
        "SELECT source_row, idremote, msisdn_masked, reason, field FROM sms_rejected_rows"
        " ORDER BY source_row"
    )
    assert stored["source_row"].tolist() == [2, 3, 4, 9]
    assert stored["reason"].tolist() == [
        "MSISDN_NOT_MOBILE",
        "MSISDN_INVALID",
        "IDREMOTE_INVALID",
        "OPTED_OUT",
    ]
    assert stored["msisdn_masked"].tolist() == [
        "+33*******89",
        "+33**",  # "12" is read as a French national number: too short to show digits
        "+33*******04",
        "+33*******99",
    ]
    assert not stored["msisdn_masked"].str.contains(r"[0-9]{5}").any()


def test_file_states_only_move_forward(warehouse) -> None:
    tmp = SEND.replace(".csv", ".tmp")
    with pytest.raises(ValueError, match="campaign_id"):
        warehouse.record_file_state(SEND, "planned")
    with pytest.raises(ValueError, match="state"):
        warehouse.record_file_state(SEND, "sent", campaign_id="promo")
    assert (
        warehouse.record_file_state(SEND, "planned", campaign_id="promo", row_count=10) == "planned"
    )
    assert warehouse.record_file_state(tmp, "tmp", byte_count=1234, sha256="ab" * 32) == "tmp"
    assert warehouse.record_file_state(SEND, "lock") == "lock"
    assert warehouse.record_file_state(SEND, "csv") == "lock"  # a retried task: no step back
    assert warehouse.record_file_state(SEND, "done") == "done"
    assert warehouse.record_file_state(SEND, "reject") == "done"  # final is final
    row = warehouse.query_frame("SELECT * FROM sms_campaign_files").to_dict("records")
    assert len(row) == 1
    row = row[0]
    assert (row["name"], row["campaign_id"], row["row_count"], row["byte_count"]) == (
        SEND,
        "promo",
        10,
        1234,
    )
    assert row["state"] == "done" and row["sha256"] == "ab" * 32
    assert not pd.isna(row["finished_at"])


def test_record_campaign_from_a_summary(warehouse) -> None:
    summary = Summary(
        campaign_id="promo",
        service_id="12345",
        send_at="2026-12-01T10:00:00+01:00",
        requested_send_at="2026-11-30T20:00:00+00:00",
        recipients=12,
        valid=10,
        rejected=2,
        opted_out=1,
        segments=11,
        files=[{"name": SEND, "rows": 10}],
    )
    params = {"template": "Bonjour {prenom}", "long_sms": False}
    warehouse.record_campaign(
        "promo", "12345", status="prepared", parameters=params, summary=summary
    )
    warehouse.record_campaign("promo", "12345", status="submitted")  # keeps what it does not say
    row = warehouse.query_frame(
        "SELECT campaign_id, service_id, status, recipients, valid, rejected, opted_out,"
        " segments, files, send_at, CAST(parameters AS TEXT) AS parameters FROM sms_campaigns"
    ).to_dict("records")[0]
    assert row["status"] == "submitted"
    assert [
        row[k] for k in ("recipients", "valid", "rejected", "opted_out", "segments", "files")
    ] == [
        12,
        10,
        2,
        1,
        11,
        1,
    ]
    assert pd.Timestamp(row["send_at"]) == pd.Timestamp("2026-12-01T10:00:00+01:00")
    assert json.loads(row["parameters"]) == params


def test_big_ack_loads_in_bulk(warehouse) -> None:
    """50,000 ACK lines go through the bulk path (and again, inserting nothing)."""
    n = 50_000
    numbers = [f"+336{i:08d}" for i in range(n)]
    data = b"".join(
        write_ack_line(f"C{i}", numbers[i], "SHOP", "Promo", 1 + i % 4, "x", "op") for i in range(n)
    )
    frame = parse_ack(data, ACK)
    assert warehouse.load_acks(frame, ACK).new == n
    assert warehouse.load_acks(frame, ACK).new == 0
    stats = warehouse.campaign_stats("promo")
    assert stats["acked"] == n and stats["delivered"] == n // 4
    assert np.isclose(stats["delivery_rate"], 0.25)


def test_quarantined_records_are_kept_once(warehouse) -> None:
    from smsdrop.reports import parse_replies_from

    data = reply_bytes() + b"+33612345603;2026-13-01;1030;STOP;C3\r\nx;y\r\n"
    chunk = parse_replies_from(data, STOP, 0, quarantine=True, require_msisdn=True)
    assert len(chunk.frame) == 4 and len(chunk.quarantined) == 2
    assert chunk.next_offset == len(data)
    with warehouse.transaction():
        assert warehouse.quarantine_records(STOP, chunk.quarantined) == 2
    assert warehouse.quarantine_records(STOP, chunk.quarantined) == 0  # same bytes: nothing
    rows = warehouse.query_frame(
        "SELECT file, byte_offset, byte_length, field, reason, raw_masked"
        " FROM sms_report_quarantine ORDER BY byte_offset"
    ).to_dict("records")
    assert [(r["file"], r["field"]) for r in rows] == [(STOP, "DATE"), (STOP, "HOUR")]
    assert rows[0]["byte_offset"] == len(reply_bytes())
    assert rows[0]["byte_length"] == len(b"+33612345603;2026-13-01;1030;STOP;C3\r\n")
    assert rows[0]["raw_masked"] == "+*********03;2026-13-01;1030;STOP;C3"  # number masked
    assert "found '2026-13-01'" in rows[0]["reason"]
    assert warehouse.quarantine_records(STOP, ()) == 0


def test_last_optout_load(warehouse) -> None:
    from datetime import UTC, datetime, timedelta

    assert warehouse.last_optout_load() is None
    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    counts = {"files": 2, "files_read": 1, "bytes": 10, "rows": 3, "quarantined": 1}
    warehouse.record_optout_load(t0, t0 + timedelta(seconds=2), counts)
    warehouse.record_optout_load(t0 - timedelta(hours=1), t0 - timedelta(hours=1), {})
    last = warehouse.last_optout_load()
    assert last == t0 + timedelta(seconds=2) and last.utcoffset() == timedelta(0)
    row = warehouse.query_frame(
        "SELECT files, files_read, bytes, records, quarantined, replies, optouts"
        " FROM sms_optout_loads ORDER BY finished_at DESC LIMIT 1"
    ).iloc[0]
    assert row.tolist() == [2, 1, 10, 3, 1, 0, 0]
