"""The campaign pages' JSON API and HTML on DuckDB and PostgreSQL: every figure equals the
views', no personal data, Airflow's auth.

The warehouse is seeded with real loads (conftest.seed); the oracle is the views queried
directly with SQL, never the code under test.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.plugin.conftest import REJECTS, RUN_ID, SECRET_TEXT, SEND, SEND_2, token
from tests.warehouse.reportdata import ACK_LINES, REPLIES


def _views(view: str, key: str | None = None) -> list[dict]:
    """Rows of a view for campaign promo, straight from SQL (the oracle)."""
    from smsdrop.airflow.warehouse import warehouse_from_connection

    with warehouse_from_connection(read_only=True) as wh:
        frame = wh.query_frame(f"SELECT * FROM {view} WHERE campaign_id = 'promo'")
    rows = json.loads(frame.to_json(orient="records", double_precision=15))
    return sorted(rows, key=lambda r: str(r.get(key))) if key else rows


def _close(a, b) -> bool:
    return a == b or (a is not None and b is not None and abs(a - b) < 1e-12)


def _same(row: dict, oracle: dict) -> None:
    for column, expected in oracle.items():
        assert _close(row[column], expected), (column, row[column], expected)


def test_list_equals_the_view(seeded, client) -> None:
    answer = client.get("/smsdrop/api/campaigns")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    ids = [c["campaign_id"] for c in body["campaigns"]]
    # newest first; the ACK lines of no recorded campaign are not here (all are promo's)
    assert ids == ["promo", "older"]
    assert body["total"] == 2
    promo = body["campaigns"][0]
    _same(promo, _views("sms_campaign_stats")[0])
    # what the table shows, exactly (hand-counted in tests/warehouse/test_views.py + file 2)
    assert {k: promo[k] for k in ("submitted", "sent", "delivered", "failed", "pending")} == {
        "submitted": 12,
        "sent": 7,
        "delivered": 4,
        "failed": 2,
        "pending": 4,  # 2 of file 1 + the 2 rows of file 2
    }
    assert promo["status"] == "acknowledged"
    assert promo["recipients"] == 16
    assert promo["stop_rate"] == pytest.approx(2 / 7)
    assert promo["run_id"] == RUN_ID
    assert promo["send_at"] == "2026-12-01T09:00:00+00:00"
    older = body["campaigns"][1]
    assert (older["sent"], older["pending"], older["stop_rate"]) == (0, 0, None)


def test_one_campaign_equals_the_views(seeded, client) -> None:
    answer = client.get("/smsdrop/api/campaigns/promo")
    assert answer.status_code == 200, answer.text
    detail = answer.json()
    _same(detail["campaign"], _views("sms_campaign_stats")[0])
    assert [(s["step"], s["count"]) for s in detail["funnel"]] == [
        ("audience", 16),
        ("valid", 12),
        ("uploaded", 12),
        ("sent", 7),
        ("delivered", 4),
    ]
    assert {r["reason"]: r["rows"] for r in detail["rejects"]} == (
        REJECTS["reason"].value_counts().to_dict()
    )
    networks = sorted(detail["by_network"], key=lambda r: str(r["network"]))
    oracle = _views("sms_campaign_stats_by_operator", "network")
    assert len(networks) == len(oracle) == 4
    for row, expected in zip(networks, oracle, strict=True):
        _same(row, expected)
    countries = sorted(detail["by_country"], key=lambda r: str(r["country"]))
    oracle = _views("sms_campaign_stats_by_country", "country")
    assert [r["country"] for r in countries] == [r["country"] for r in oracle] == ["BE", "FR"]
    for row, expected in zip(countries, oracle, strict=True):
        _same(row, expected)
    # STOP replies over time: first STOP of each person per hour; the total is the view's
    timeline = detail["stop_replies_over_time"]
    assert [(p["hour"], p["stop_replies"]) for p in timeline] == [
        ("2026-12-01T09:00:00+00:00", 1),  # +33612345601 at 10:30 Paris
        ("2026-12-01T10:00:00+00:00", 1),  # +32470123457 at 11:00:05 Paris
    ]
    assert timeline[-1]["cumulative"] == detail["campaign"]["stop_replies"] == 2
    files = {f["name"]: f for f in detail["files"]}
    assert files[SEND]["states"] == ["planned", "tmp", "csv", "lock", "done"]
    assert files[SEND]["final"] and files[SEND]["finished_at"]
    assert (files[SEND]["acked"], files[SEND]["row_count"]) == (len(ACK_LINES), 10)
    assert files[SEND]["ack_loaded_at"] is not None
    assert files[SEND_2]["states"] == ["planned", "tmp", "csv"]
    assert (files[SEND_2]["acked"], files[SEND_2]["finished_at"]) == (0, None)


def test_no_personal_data(seeded, client) -> None:
    texts = [
        client.get(path).text
        for path in (
            "/smsdrop/api/campaigns",
            "/smsdrop/api/campaigns/promo",
            "/smsdrop/campaigns",
            "/smsdrop/campaigns/promo",
        )
    ]
    numbers = {m for _, m, *_ in ACK_LINES} | {m for m, *_ in REPLIES}
    numbers |= {n for n in REJECTS["msisdn"] if len(n) > 6}  # "12" is in any page
    bodies = {msg for *_, msg, _s, _st, _op in ACK_LINES} | {t for _, _, t, _ in REPLIES}
    bodies = {b for b in bodies if len(b) > 6}  # "stop" is a column name
    for text in texts:
        assert SECRET_TEXT not in text and "template" not in text
        for value in numbers | {n.removeprefix("+") for n in numbers}:
            assert value not in text, value
        for body in bodies:
            assert body not in text, body


def test_pages_show_the_figures(seeded, client) -> None:
    listing = client.get("/smsdrop/campaigns")
    assert listing.status_code == 200
    row = re.search(r'<tr data-campaign="promo">(.*?)</tr>', listing.text).group(1)
    cells = dict(re.findall(r'data-field="(\w+)" data-value="([^"]*)"', row))
    assert {k: cells[k] for k in ("sent", "delivered", "failed", "pending", "recipients")} == {
        "sent": "7", "delivered": "4", "failed": "2", "pending": "4", "recipients": "16",
    }  # fmt: skip
    assert 'href="/smsdrop/campaigns/promo"' in row
    assert f"/dags/sms_campaign/runs/{RUN_ID.replace(':', '%3A').replace('+', '%2B')}" in row
    page = client.get("/smsdrop/campaigns/promo")
    assert page.status_code == 200
    for plot in ("funnel", "rejects", "by_network", "by_country", "stops"):
        assert f'data-plot="{plot}"' in page.text
    funnel = re.search(r'data-plot="funnel".*?</svg>', page.text).group(0)
    assert re.findall(r'data-label="(\w+)" data-value="(\d+)"', funnel) == [
        ("audience", "16"), ("valid", "12"), ("uploaded", "12"), ("sent", "7"),
        ("delivered", "4"),
    ]  # fmt: skip


def test_run_tab(seeded, client) -> None:
    """The "Campaign" tab of a DAG run: the campaign it planned, or a page saying none."""
    from urllib.parse import quote

    tab = client.get(f"/smsdrop/runs/sms_campaign/{quote(RUN_ID, safe='')}")
    assert (tab.status_code, tab.headers["location"]) == (307, "/smsdrop/campaigns/promo")
    other = client.get("/smsdrop/runs/sms_reports/scheduled__2026-12-01T09:00:00+00:00")
    assert other.status_code == 200 and "No campaign" in other.text


def test_unknown_campaign(seeded, client) -> None:
    assert client.get("/smsdrop/api/campaigns/nope").status_code == 404
    assert client.get("/smsdrop/campaigns/nope").status_code == 404


@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
def test_empty_warehouse(warehouse_conn, client) -> None:
    """A warehouse no campaign ever ran on (not even migrated): an empty list, no error."""
    assert client.get("/smsdrop/api/campaigns").json() == {"campaigns": [], "total": 0}
    assert "No campaign in the warehouse yet" in client.get("/smsdrop/campaigns").text


@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
def test_auth(seeded, client, auth_manager) -> None:
    """No session: the API says 401, a page sends to the auth manager's login and back;
    a bad token: 403; a user without a role (no access to the DAG's runs): 403."""
    client.cookies.clear()
    assert client.get("/smsdrop/api/campaigns").status_code == 401
    assert client.get("/smsdrop/api/campaigns/promo").status_code == 401
    assert client.get("/smsdrop/api/openapi.json").status_code == 401
    page = client.get("/smsdrop/campaigns/promo?x=1")
    assert page.status_code == 303
    assert page.headers["location"] == auth_manager.get_url_login(
        next_url="/smsdrop/campaigns/promo?x=1"
    )
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert client.get("/smsdrop/api/campaigns", headers=bad).status_code == 403
    nobody = {"Authorization": f"Bearer {token(auth_manager, None)}"}
    assert client.get("/smsdrop/api/campaigns", headers=nobody).status_code == 403
    viewer = {"Authorization": f"Bearer {token(auth_manager, 'viewer')}"}
    assert client.get("/smsdrop/api/campaigns", headers=viewer).json()["total"] == 2
    schema = client.get("/smsdrop/api/openapi.json", headers=viewer).json()
    assert set(schema["paths"]) == {"/api/campaigns", "/api/campaigns/{campaign_id}"}


@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
def test_duckdb_held_by_a_task(seeded, client, monkeypatch, tmp_path) -> None:
    """While another process writes the DuckDB file, a page answers 503 after a short wait
    (not the engine's ten minutes), and works again once the file is free."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from smsdrop.airflow import campaign_app

    monkeypatch.setattr(campaign_app, "DUCKDB_WAIT", 1.0)
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True)"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold + "; time.sleep(120)", str(tmp_path / "wh.duckdb")],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert holder.stdout.readline().strip() == b"held"
        started = time.monotonic()
        busy = client.get("/smsdrop/api/campaigns")
        assert busy.status_code == 503
        assert "being written by a task" in busy.json()["detail"]
        assert time.monotonic() - started < 30
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(30)
    assert client.get("/smsdrop/api/campaigns").json()["total"] == 2
