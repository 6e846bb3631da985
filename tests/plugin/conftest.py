"""Fixtures of the campaign pages' tests: a warehouse seeded with real loads, an Airflow
session token, a client of the plugin's app.

The warehouse is the ``smsdrop_warehouse`` connection of ``tests/airflow/conftest.py``
(a fresh DuckDB file, or a fresh PostgreSQL schema on 127.0.0.1:5432), filled through the
warehouse's own loads: ``record_campaign``, ``record_file_state`` through the states,
``load_acks`` and ``load_replies`` of reports written byte by byte with
``smsdrop.reports`` (``tests/warehouse/reportdata.py``), ``save_rejects`` and
``upsert_optouts``. The oracle of every test is the views, queried directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT))

from tests.airflow.conftest import postgres_conn, warehouse_conn  # noqa: F401
from tests.warehouse.conftest import pg_database  # noqa: F401
from tests.warehouse.reportdata import (
    ACK,
    SEND,
    SMSMO,
    STOP,
    ack_frame,
    replies_frame,
)

#: A second file of the campaign, still in flight (uploaded, no ACK yet).
SEND_2 = "SEND-12345-20261201-1000-promo_2.csv"
RUN_ID = "manual__2026-12-01T08:55:00+00:00"
SECRET_TEXT = "Bonjour Alice, votre code 4242"  # a template: must never be shown

REJECTS = pd.DataFrame(
    {
        "row": [3, 7, 9, 12],
        "idremote": ["R3", "R7", "R9", "R12"],
        "msisdn": ["+33612999903", "0612999907", "12", "+33612999912"],
        "reason": ["MSISDN_INVALID", "OPTED_OUT", "MSISDN_INVALID", "MSISDN_DUPLICATE"],
        "field": ["MSISDN", "MSISDN", "MSISDN", "MSISDN"],
        "detail": ["not a number", "opted out", "too short", "seen at row 2"],
    }
)


def seed(wh) -> None:
    """Campaign ``promo``: 16 recipients, 12 valid, 4 rejected; file 1 (10 rows) done and
    acknowledged (8 lines), file 2 (2 rows) uploaded, no ACK; replies and STOPs; campaign
    ``older`` only recorded; ACK lines of an unrecorded campaign come last."""
    wh.migrate()
    wh.record_campaign("older", "12345", status="failed", parameters={"template": SECRET_TEXT})
    wh.record_campaign(
        "promo",
        "12345",
        status="prepared",
        parameters={"template": SECRET_TEXT, "planned_by": RUN_ID},
        summary={
            "recipients": 16,
            "valid": 12,
            "rejected": 4,
            "opted_out": 1,
            "segments": 14,
            "files": [SEND, SEND_2],
            "send_at": "2026-12-01T10:00:00+01:00",
        },
    )
    for state in ("planned", "tmp", "csv", "lock", "done"):
        wh.record_file_state(SEND, state, campaign_id="promo", row_count=10, byte_count=900)
    for state in ("planned", "tmp", "csv"):
        wh.record_file_state(SEND_2, state, campaign_id="promo", row_count=2, byte_count=180)
    wh.load_acks(ack_frame(), ACK)
    wh.load_replies(replies_frame(), SMSMO)
    wh.load_replies(replies_frame(name=STOP), STOP)  # the same STOPs again: no double
    wh.save_rejects("promo", REJECTS)
    wh.upsert_optouts(pd.DataFrame({"msisdn": ["+33612999907"]}), "import")
    wh.record_campaign("promo", "12345", status="acknowledged")


@pytest.fixture
def seeded(warehouse_conn: str) -> Iterator[str]:  # noqa: F811
    """The connection's warehouse, seeded; yields the engine name."""
    from smsdrop.airflow.warehouse import warehouse_from_connection

    with warehouse_from_connection() as wh:
        seed(wh)
    yield warehouse_conn


@pytest.fixture(scope="session")
def auth_manager(tmp_path_factory: pytest.TempPathFactory):
    """Airflow's auth manager of this configuration (the simple one, users with a login),
    initialised; its generated passwords go to a temporary file."""
    folder = tmp_path_factory.mktemp("auth")
    os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "plugin-tests-" + "k" * 64)
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(folder / "passwords")
    from airflow.api_fastapi.app import init_auth_manager

    return init_auth_manager()


def token(auth_manager, role: str | None) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username="analyst", role=role))


@pytest.fixture
def client(auth_manager):
    """A client of the plugin's app, logged in as a viewer (the session cookie)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from smsdrop.airflow.campaign_app import URL_PREFIX, create_app

    root = FastAPI()
    root.mount(URL_PREFIX, create_app())  # as the api-server mounts a plugin's app
    with TestClient(root, follow_redirects=False) as test_client:
        test_client.cookies.set("_token", token(auth_manager, "viewer"))
        yield test_client
