"""Alert contents: exact figures, thresholds, and no personal data."""

from __future__ import annotations

from smsdrop.alerts import Level, Thresholds, accepted, ack_alerts, rejected, started

STATS = {"acked": 1000, "sent": 900, "delivered": 630, "not_sent": 100, "stop_replies": 27}


def test_thresholds_fire_with_exact_figures() -> None:
    alerts = {a.kind: a for a in ack_alerts("C1", STATS, Thresholds())}
    assert set(alerts) == {"delivery_rate", "stop_rate"}  # not sent 10.0 % is not above 10 %
    delivery = alerts["delivery_rate"]
    assert delivery.level is Level.FAILURE
    assert delivery.subject == "[smsdrop FAILED] campaign C1: delivery rate 70.0% below 80.0%"
    assert delivery.figures["delivery_rate"] == 0.7
    assert "acknowledged 1,000, sent 900, delivered 630, not sent 100" in delivery.text()
    assert alerts["stop_rate"].subject.endswith("stop rate 3.0% above 2.0%")


def test_thresholds_are_parameters_and_can_be_off() -> None:
    strict = Thresholds(min_delivery_rate=0.5, max_not_sent_rate=0.05, max_stop_rate=None)
    assert [a.kind for a in ack_alerts("C1", STATS, strict)] == ["not_sent_rate"]
    assert ack_alerts("C1", STATS, Thresholds(None, None, None)) == []


def test_no_ack_yet_is_no_rate() -> None:
    assert ack_alerts("C1", {"acked": 0, "sent": 0}, Thresholds()) == []


def test_the_providers_two_notices_and_a_reject() -> None:
    done = accepted("C1", "SEND-SVC01-20261201-0800-C1.csv", 12_000)
    assert done.subject == "[smsdrop ok] campaign C1: SEND-SVC01-20261201-0800-C1.csv accepted"
    assert "12,000 SMS" in done.text()
    assert started("C1", 24_000, 2, "2026-12-01 08:00").subject.endswith("24,000 SMS programmed")
    assert rejected("C1", "SEND-SVC01-20261201-0800-C1.csv").level is Level.FAILURE
