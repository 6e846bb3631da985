"""load_acks treats the provider's ACK as untrusted: a record that does not parse is set
aside (quarantined, masked), the others are loaded, and the task goes on (both engines)."""

from __future__ import annotations

from typing import Any

import pytest

from smsdrop.airflow import campaign_tasks
from smsdrop.airflow.warehouse import warehouse_from_connection

pytestmark = pytest.mark.usefixtures("airflow_db")

SEND = "SEND-12345-20261201-1000-ackt.csv"
REQUEST = {
    "campaign_id": "ackt",
    "service_id": "12345",
    "audience": "audience",
    "message": "Bonjour",
    "sender": "SHOP",
    # These ACKs are about untrusted records, not delivery: "sent" without a receipt is a
    # 0 % delivery rate, which the default threshold (80 %) would fail (test_campaign_controls).
    "min_delivery_rate": "off",
    "max_not_sent_rate": "off",
    "max_stop_rate": "off",
}


def test_a_bad_ack_record_is_set_aside_and_the_rest_loaded(
    make_sandbox, connect, warehouse_conn: str
) -> None:
    sandbox = make_sandbox()
    connect(sandbox.port)
    good = [f"c{i};+336123456{i:02d};SHOP;Bonjour;2;sent;op-{i}" for i in range(3)]
    bad = ["c9;+33612345699;SHOP;Bonjour;2", "c8;+3361234\x0098;SHOP;Bonjour;2;sent;op-8"]
    body = "".join(f"{line}\r\n" for line in [good[0], bad[0], good[1], bad[1], good[2]])
    (sandbox.layout.report / SEND.replace("SEND-", "ACK-")).write_bytes(body.encode())
    with warehouse_from_connection() as warehouse:
        warehouse.migrate()
        warehouse.record_campaign("ackt", "12345", status="submitted")
        warehouse.record_file_state(SEND, "done", campaign_id="ackt", row_count=5)

    counts: dict[str, Any] = campaign_tasks.load_acks(REQUEST, [{"remote_name": SEND}])

    assert counts["files"] == 1
    assert counts["quarantined"] >= 1
    assert counts["rows"] + counts["quarantined"] == 5  # every record loaded or set aside
    with warehouse_from_connection() as warehouse:
        loaded = warehouse.query_frame("SELECT idremote FROM sms_deliveries")
        aside = warehouse.query_frame("SELECT * FROM sms_report_quarantine")
    assert {"c0", "c1", "c2"} <= set(loaded["idremote"])
    assert "c9" not in set(loaded["idremote"])
    assert len(aside) == counts["quarantined"]
    assert not any("+33612345699" in str(v) for v in aside.to_numpy().ravel())  # masked
    # Loading again adds nothing (idempotent), and sets nothing aside twice.
    again = campaign_tasks.load_acks(REQUEST, [{"remote_name": SEND}])
    assert again["new"] == 0
    with warehouse_from_connection() as warehouse:
        assert len(warehouse.query_frame("SELECT * FROM sms_report_quarantine")) == len(aside)
