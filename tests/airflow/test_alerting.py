"""Alerts delivered for real: an SMTP server (aiosmtpd) and a webhook on loopback."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller

from smsdrop.airflow.alerting import CampaignAlertNotifier, alert_connections, deliver
from smsdrop.alerts import Thresholds, ack_alerts

STATS = {"acked": 1000, "sent": 900, "delivered": 630, "not_sent": 100, "stop_replies": 27}


class Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.mails.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    box = Inbox()
    with socket.socket() as probe:  # aiosmtpd needs a port number before it listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        extra = {
            "from_email": "smsdrop@example.org",
            "to": "owner@example.org, ops@example.org",
            "disable_tls": True,
            "disable_ssl": True,
            "retry_limit": 0,
            "timeout": 5,
        }
        conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": controller.port, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_SMSDROP_MAIL", json.dumps(conn))
        yield box
    finally:
        controller.stop()


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    conn = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": server.server_port,
        "schema": "http",
        "extra": {"endpoint": "hook"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMSDROP_CHAT", json.dumps(conn))
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def _body(mail: Message) -> str:
    part = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    return part.get_payload(decode=True).decode()


def test_a_threshold_alert_arrives_by_mail_with_its_figures(inbox: Inbox) -> None:
    alert = ack_alerts("SPRING26", STATS, Thresholds())[0]
    assert deliver(alert, ["smsdrop_mail"]) == {"smsdrop_mail": "sent"}
    [(rcpts, mail)] = inbox.mails
    assert rcpts == ["owner@example.org", "ops@example.org"]
    assert mail["Subject"] == "[smsdrop FAILED] campaign SPRING26: delivery rate 70.0% below 80.0%"
    assert mail["From"] == "smsdrop@example.org"
    body = _body(mail)
    assert "acknowledged 1,000, sent 900, delivered 630, not sent 100, STOP replies 27" in body


def test_webhook_and_mail_together_and_a_dead_channel_does_not_stop_the_others(
    inbox: Inbox, webhook: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = {"conn_type": "http", "host": "127.0.0.1", "port": 9, "schema": "http"}  # refused
    monkeypatch.setenv("AIRFLOW_CONN_SMSDROP_DEAD", json.dumps(dead))
    alert = ack_alerts("SPRING26", STATS, Thresholds())[1]
    outcomes = deliver(alert, alert_connections("smsdrop_dead, smsdrop_chat,smsdrop_mail"))
    assert outcomes["smsdrop_chat"] == outcomes["smsdrop_mail"] == "sent"
    assert outcomes["smsdrop_dead"].startswith("not sent: URLError")
    [posted] = webhook
    assert (
        posted["alert"]["kind"] == "stop_rate" and posted["alert"]["figures"]["stop_replies"] == 27
    )
    assert posted["text"].startswith("[smsdrop FAILED] campaign SPRING26: stop rate 3.0%")
    assert len(inbox.mails) == 1


def test_a_failed_task_becomes_an_alert_without_the_phone_number(inbox: Inbox) -> None:
    context = {
        "ti": SimpleNamespace(task_id="contract"),
        "exception": ValueError("row 3: +33 6 12 34 56 78 failed the contract"),
        "params": {"alert_connections": "smsdrop_mail"},
    }
    CampaignAlertNotifier(campaign_id="SPRING26").notify(context)
    [(_, mail)] = inbox.mails
    assert mail["Subject"] == "[smsdrop FAILED] campaign SPRING26: task contract failed"
    body = _body(mail)
    assert "ValueError: row 3: &lt;number&gt; failed the contract" in body
    assert "12 34 56" not in body and "612345678" not in body


def test_the_notifier_names_a_rejected_file_and_adds_nothing_to_an_alerted_failure(
    inbox: Inbox,
) -> None:
    from smsdrop.airflow.alerting import AlertedFailure
    from smsdrop.airflow.exceptions import MTargetRejectedError
    from smsdrop.airflow.sensors import MTargetFileStatusSensor

    name = "SEND-12345-20261201-0800-SPRING26.csv"
    sensor = MTargetFileStatusSensor(task_id="wait_done", name={"name": name, "records": 9})
    notifier = CampaignAlertNotifier(campaign_id="SPRING26")
    params = {"alert_connections": "smsdrop_mail"}
    notifier.notify(
        {"ti": SimpleNamespace(task_id="wait_done"), "task": sensor, "params": params,
         "exception": MTargetRejectedError(f"Send/{name[:-4]}.reject: REJECTED")}
    )  # fmt: skip
    notifier.notify(
        {"ti": SimpleNamespace(task_id="load_acks"), "params": params,
         "exception": AlertedFailure("under the thresholds (alert sent)")}
    )  # fmt: skip
    notifier.notify(
        {"ti": SimpleNamespace(task_id="wait_ack"), "params": params,
         "exception": TimeoutError("no ACK")}
    )  # fmt: skip
    subjects = [str(mail["Subject"]) for _, mail in inbox.mails]
    assert subjects == [
        f"[smsdrop FAILED] campaign SPRING26: {name} rejected by the provider",
        "[smsdrop FAILED] campaign SPRING26: task wait_ack failed",
    ]
    assert f"The provider renamed {name} to .reject" in _body(inbox.mails[0][1])
    late = _body(inbox.mails[1][1])
    assert "TimeoutError: no ACK" in late and "Nothing was uploaded" not in late
    assert "may be with the provider already" in late
