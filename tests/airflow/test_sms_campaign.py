"""The ``sms_campaign`` DAG end to end: real ``dag.test()`` runs against the sandbox, on
DuckDB and on PostgreSQL, reconciled with the sandbox's event log (the oracle).

Every audience row must end sent once or rejected with a reason; no opted-out number may
be sent; a STOP loaded by ``sms_reports`` keeps that person out of the next campaign; a
re-triggered campaign sends nothing twice; a provider reject fails the run naming the
file. Assertion messages never show a full number.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from smsdrop import synthetic
from smsdrop.airflow.warehouse import warehouse_from_connection
from smsdrop.msisdn import classify
from smsdrop.prepare import first_allowed_slot
from smsdrop.sandbox import Sandbox
from tests.airflow.support import run_dag, task_states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")
ROOT = Path(__file__).resolve().parents[2]
ROWS = 3_000
TEMPLATE = "Bonjour {first_name}, -20% ce samedi a {city} ! STOP au 36111"
CONF: dict[str, Any] = {
    "campaign_id": "spring",
    "service_id": "12345",
    "audience": "audience",
    "message": TEMPLATE,
    "sender": "SHOP",
    "encoding_policy": "transliterate",
    "upload_lead_minutes": 10080,  # the slot may be the next morning: upload at once
}


@pytest.fixture(scope="module")
def slot() -> datetime:
    """The send time of the tests' campaigns: the next allowed minute an hour from now.

    The DAG checks a slot against the real clock before uploading, so the tests plan one
    the real clock allows, and start the sandbox's clock there (as ``make demo`` does).
    """
    return first_allowed_slot(datetime.now(UTC) + timedelta(hours=1), ["FR"], None)


@pytest.fixture
def sandbox(make_sandbox, slot: datetime) -> Sandbox:
    return make_sandbox(start=slot)


@pytest.fixture
def campaign(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sandbox: Sandbox,
    connect,
    warehouse_conn,
    slot: datetime,
) -> dict[str, Any]:
    """The sandbox as ``mtarget_default``, a warehouse seeded with an audience and opt-outs,
    fast polls, a private staging folder and 1,000-record files (so uploads are mapped)."""
    connect(sandbox.port)
    monkeypatch.setenv("SMSDROP_POLL_SECONDS", "0.2")
    monkeypatch.setenv("SMSDROP_ACK_POLL_SECONDS", "0.3")
    monkeypatch.setenv("SMSDROP_RETRY_DELAY_SECONDS", "1")
    monkeypatch.setenv("SMSDROP_STAGING", (tmp_path / "staging").as_uri())
    monkeypatch.setattr("smsdrop.airflow.campaign_tasks.MAX_RECORDS", 1_000)
    monkeypatch.setitem(CONF, "send_at", slot.isoformat())
    frame = synthetic.audience(ROWS)
    optouts = synthetic.optouts_for(frame, share=0.05)
    with warehouse_from_connection() as warehouse:
        warehouse.migrate()
        warehouse.replace_table("audience", pa.Table.from_pandas(frame, preserve_index=False))
        warehouse.upsert_optouts(pd.DataFrame({"msisdn": optouts}), "import")
    opted = set(classify(pd.Series(optouts, dtype="string[pyarrow]"))["e164"].dropna())
    return {"frame": frame, "optouts": opted, "staging": tmp_path / "staging"}


def _dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "sms_campaign.py"))
    assert bag.import_errors == {}
    return bag.dags["sms_campaign"]


def _run(sandbox: Sandbox, **conf: Any) -> Any:
    with sandbox.fast_forward():
        return run_dag(_dag(), run_conf={**CONF, **conf})


def _query(sql: str, *params: Any) -> pd.DataFrame:
    with warehouse_from_connection() as warehouse:
        return warehouse.query_frame(sql, params)


def _sent(sandbox: Sandbox) -> Counter[str]:
    return Counter(e["msisdn"] for e in sandbox.events("message_sent"))


@pytest.mark.parametrize(("value", "seconds"), [(None, 60), ("7", 7)])
def test_the_retry_delay_is_read_at_parse(
    monkeypatch: pytest.MonkeyPatch, value: str | None, seconds: int
) -> None:
    if value is None:
        monkeypatch.delenv("SMSDROP_RETRY_DELAY_SECONDS", raising=False)
    else:
        monkeypatch.setenv("SMSDROP_RETRY_DELAY_SECONDS", value)
    delays = {t.task_id: t.retry_delay.total_seconds() for t in _dag().tasks}
    assert set(delays.values()) == {seconds}, delays


@pytest.mark.parametrize(
    ("name", "value"),
    [("SMSDROP_POLL_SECONDS", "abc"), ("SMSDROP_ACK_POLL_SECONDS", "nan"),
     ("SMSDROP_RETRY_DELAY_SECONDS", "-5")],
)  # fmt: skip
def test_a_bad_setting_is_the_dags_import_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv(name, value)
    bag = DagBag(dag_folder=str(ROOT / "dags" / "sms_campaign.py"))
    assert "sms_campaign" not in bag.dags
    (error,) = bag.import_errors.values()
    assert f"field {name}: must be" in error, error


@pytest.mark.parametrize(
    ("name", "value"), [("SMSDROP_MAX_RECORDS", "2000000"), ("SMSDROP_BATCH_ROWS", "1.5")]
)
def test_a_bad_size_fails_the_first_task_importing_the_steps_naming_it(
    name: str, value: str
) -> None:
    """The sizes are read when a task imports ``campaign_tasks``, not at DAG parse."""
    code = "import smsdrop.airflow.campaign_tasks"
    env = {**os.environ, name: value}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False,
        timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"InputError: field {name}: must be" in done.stderr, done.stderr[-500:]


def test_a_campaign_end_to_end(sandbox: Sandbox, campaign: dict[str, Any]) -> None:
    run = _run(sandbox)
    states = task_states(run)
    assert str(run.state) == "success", states
    assert {s for s, _ in states.values()} == {"success"}, states

    summary = xcom(run, "prepare")["summary"]
    files = [f["name"] for f in summary["files"]]
    assert len(files) == -(-summary["valid"] // 1_000) >= 2

    # The oracle: every row sent once or rejected with a reason; no opted-out number sent.
    sent = _sent(sandbox)
    not_sent = Counter(e["msisdn"] for e in sandbox.events("message_not_sent"))
    assert max(sent.values()) == 1
    assert sum(sent.values()) + sum(not_sent.values()) == summary["valid"]
    assert not set(sent) & campaign["optouts"]
    rejected = _query(
        "SELECT reason, count(*) AS n FROM sms_rejected_rows WHERE campaign_id = %s"
        " GROUP BY reason",
        "spring",
    )
    by_reason = dict(zip(rejected["reason"], rejected["n"].astype(int), strict=True))
    assert by_reason == summary["rejects_by_reason"]
    assert summary["valid"] + sum(by_reason.values()) == ROWS
    assert by_reason.get("OPTED_OUT", 0) > 0 and by_reason.get("MSISDN_INVALID", 0) > 0

    # The warehouse: files done, ACK lines loaded, stats for analysts.
    recorded = _query(
        "SELECT name, state, row_count FROM sms_campaign_files WHERE campaign_id = %s", "spring"
    )
    assert sorted(recorded["name"]) == sorted(files)
    assert set(recorded["state"]) == {"done"}
    stats = _query("SELECT * FROM sms_campaign_stats WHERE campaign_id = %s", "spring")
    assert int(stats["sent"].iloc[0]) == summary["valid"]
    deliveries = _query("SELECT count(*) AS n FROM sms_deliveries WHERE campaign_id = %s", "spring")
    assert int(deliveries["n"].iloc[0]) == summary["valid"]
    status = _query("SELECT status FROM sms_campaigns WHERE campaign_id = %s", "spring")
    assert status["status"].tolist() == ["acknowledged"]

    # Clean-up: staged personal data gone; processed remote files deleted.
    assert not any(p.is_file() for p in campaign["staging"].rglob("*"))
    left = {p.name for p in (sandbox.layout.send.iterdir())} | {
        p.name for p in sandbox.layout.report.iterdir() if p.name.startswith("ACK-")
    }
    assert not left, left
    contract = xcom(run, "contract")
    assert contract["success"] and contract["rows"] == summary["valid"]


def test_a_retriggered_campaign_sends_nothing_twice(
    sandbox: Sandbox, campaign: dict[str, Any]
) -> None:
    first = _run(sandbox)
    assert str(first.state) == "success"
    before = sum(_sent(sandbox).values())
    again = _run(sandbox)
    states = {t: s for t, (s, _) in task_states(again).items()}
    assert str(again.state) == "success"
    assert states["start"] == "success" and states["extract"] == "skipped", states
    sandbox.settle()
    assert sum(_sent(sandbox).values()) == before
    assert len(sandbox.events("file_received")) == len(xcom(first, "prepare")["files"])


@pytest.mark.slow
def test_a_stop_reply_keeps_the_person_out_of_the_next_campaign(
    sandbox: Sandbox, campaign: dict[str, Any]
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    first = _run(sandbox)
    sent = sorted(_sent(sandbox))
    quitter = sent[len(sent) // 2]
    sandbox.reply(quitter, "STOP merci")
    reports = DagBag(dag_folder=str(ROOT / "dags" / "sms_reports.py")).dags["sms_reports"]
    assert str(run_dag(reports).state) == "success"

    second = _run(sandbox, campaign_id="summer")
    assert str(second.state) == "success"
    summer = Counter(e["msisdn"] for e in sandbox.events("message_sent") if "summer" in e["file"])
    assert summer and quitter not in summer
    summary = xcom(second, "prepare")["summary"]
    assert sum(summer.values()) == summary["valid"]
    # The sandbox's recipients answer STOP too: every opt-out loaded so far was kept out.
    assert summary["opted_out"] > xcom(first, "prepare")["summary"]["opted_out"]
    optouts = set(_query("SELECT msisdn FROM sms_optouts")["msisdn"])
    assert quitter in optouts and not set(summer) & optouts


@pytest.mark.slow
def test_a_dry_run_uploads_nothing_and_keeps_no_staged_file(
    sandbox: Sandbox, campaign: dict[str, Any]
) -> None:
    run = _run(sandbox, dry_run=True)
    states = {t: s for t, (s, _) in task_states(run).items()}
    assert str(run.state) == "success", states
    assert states["prepare"] == states["contract"] == "success"
    assert states["upload"] == "skipped" and states["remove_staged"] == "success"
    assert not sandbox.events("file_received")
    assert not any(p.is_file() for p in campaign["staging"].rglob("*"))
    assert _query("SELECT count(*) AS n FROM sms_campaign_files")["n"].iloc[0] == 0
    # A dry run does not spend the campaign id: the real run goes through.
    assert str(_run(sandbox).state) == "success"


def test_an_audience_without_a_valid_recipient_ends_clearly(
    sandbox: Sandbox, campaign: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with warehouse_from_connection() as warehouse:
        bad = pd.DataFrame({"idremote": ["a1", "a2"], "msisdn": ["123", "+3314"],
                            "first_name": ["Ana", "Bo"], "city": ["Lyon", "Nice"]})  # fmt: skip
        warehouse.replace_table("nobody", pa.Table.from_pandas(bad, preserve_index=False))
    run = _run(sandbox, audience="nobody", campaign_id="nobody")
    states = {t: s for t, (s, _) in task_states(run).items()}
    assert str(run.state) == "success", states
    assert states["record_names"] == "success" and xcom(run, "record_names") == []
    assert states["upload"] == "skipped"
    assert "no valid recipient among 2 rows" in caplog.text
    assert not sandbox.events("file_received")
    status = _query("SELECT status, valid FROM sms_campaigns WHERE campaign_id = %s", "nobody")
    assert status.to_dict("records") == [{"status": "empty", "valid": 0}]


def test_a_rejected_file_fails_the_run_with_its_name(
    make_sandbox, connect, campaign: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    # An account bound to another SERVICEID rejects every file of this campaign.
    strict = make_sandbox(service_id="99999", start=datetime.fromisoformat(CONF["send_at"]))
    connect(strict.port)
    run = _run(strict)
    states = task_states(run)
    assert str(run.state) == "failed"
    assert states["wait_done"][0] == "failed" and states["record_outcome"][0] == "failed"
    rejected = [e["name"] for e in strict.events("file_rejected")]
    assert rejected
    recorded = _query("SELECT name, state FROM sms_campaign_files WHERE campaign_id = 'spring'")
    assert set(recorded["state"]) == {"reject"}
    assert not strict.events("message_sent")
    assert states["remove_staged"][0] == "success"
    log = capfd.readouterr()
    text = log.out + log.err
    assert all(f"the provider REJECTED {name}" in text for name in rejected), rejected


def test_the_nightly_dag_triggers_each_campaign_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from datetime import datetime

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from smsdrop.naming import PARIS

    nightly = tmp_path / "nightly.yaml"
    nightly.write_text(
        "campaigns:\n"
        "  - {campaign_id: 'promo{date}', service_id: '12345', audience: audience,\n"
        "     message: 'Bonjour {first_name}', sender: SHOP, send_time: '10:00'}\n"
        "  - {campaign_id: 'weekend', enabled: false}\n"
    )
    monkeypatch.setenv("SMSDROP_NIGHTLY_FILE", str(nightly))
    run_id = "nightly__promo20261130"
    with create_session() as session:
        session.query(DagRun).filter_by(dag_id="sms_campaign", run_id=run_id).delete()
    bag = DagBag(dag_folder=str(ROOT / "dags" / "sms_campaign_nightly.py"))
    dag = bag.dags["sms_campaign_nightly"]
    night = datetime(2026, 11, 30, 1, 30, tzinfo=PARIS)
    for _ in range(2):  # the second night's run triggers nothing more
        run = run_dag(dag, logical_date=night)
        assert str(run.state) == "success", task_states(run)
        night = night.replace(minute=31)
    with create_session() as session:
        runs = session.query(DagRun).filter_by(dag_id="sms_campaign", run_id=run_id).all()
        assert len(runs) == 1
        assert runs[0].conf["send_at"] == "2026-11-30T10:00:00+01:00"
        assert runs[0].conf["message"] == "Bonjour {first_name}"
        session.delete(runs[0])


def test_names_planned_by_a_dead_run_are_dropped_and_sent_once(
    sandbox: Sandbox, campaign: dict[str, Any]
) -> None:
    # A run planned a name and died before uploading it (nothing in Send/).
    stale = "SEND-12345-20261130-0800-spring.csv"
    with warehouse_from_connection() as warehouse:
        warehouse.record_campaign(
            "spring", "12345", status="planned", parameters={"planned_by": "manual__gone"}
        )
        warehouse.record_file_state(stale, "planned", campaign_id="spring", row_count=10)
    run = _run(sandbox)
    assert str(run.state) == "success", task_states(run)
    received = [e["name"] for e in sandbox.events("file_received")]
    assert stale not in received and len(received) == len(xcom(run, "prepare")["files"])
    names = set(_query("SELECT name FROM sms_campaign_files")["name"])
    assert stale not in names and names == set(received)


def test_the_upload_fence_refuses_a_name_this_run_no_longer_plans(
    campaign: dict[str, Any],
) -> None:
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from smsdrop.airflow.campaign_tasks import fence

    name = "SEND-12345-20261201-0900-spring.csv"
    with warehouse_from_connection() as warehouse:
        warehouse.record_campaign(
            "spring", "12345", status="planned", parameters={"planned_by": "manual__mine"}
        )
        warehouse.record_file_state(name, "planned", campaign_id="spring")
    context = {
        "task": SimpleNamespace(remote_name=name, local_path=f"/staged/{name}"),
        "params": {"campaign_id": "spring"},
        "run_id": "manual__mine",
    }
    fence(context)  # still planned by this run: goes on
    with pytest.raises(AirflowFailException, match="no longer planned by this run"):
        fence({**context, "run_id": "manual__other"})
    with warehouse_from_connection() as warehouse:
        warehouse.forget_planned("spring", [name])
    with pytest.raises(AirflowFailException, match="no longer planned"):
        fence(context)


def test_a_campaign_with_remote_staging(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, campaign: dict[str, Any]
) -> None:
    """Staging on a non-local fsspec store (``memory://`` here: ``dag.test()`` runs every
    task in this process; s3://… in a multi-worker deployment): tasks work in local
    temporary folders and copy in and out; nothing is left in the store."""
    import fsspec
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach

    attach(protocol="memory", fs=fsspec.filesystem("memory"))  # as a provider registers s3
    store = ObjectStoragePath("memory://smsdrop-test/staging")
    monkeypatch.setenv("SMSDROP_STAGING", str(store))
    run = _run(sandbox, campaign_id="remote")
    assert str(run.state) == "success", task_states(run)
    files = xcom(run, "prepare")["files"]
    assert files and all(f["local_path"].startswith("memory://") for f in files)
    summary = xcom(run, "prepare")["summary"]
    assert (
        sum(Counter(e["file"] for e in sandbox.events("message_sent")).values())
        + len(sandbox.events("message_not_sent"))
        == summary["valid"]
    )
    assert not [p for p in store.rglob("*") if p.is_file()]


INJECTIONS = [
    "audience) AS a; DELETE FROM sms_optouts; --",
    (
        "SELECT 'x' AS idremote, content AS msisdn, 'a' AS first_name, 'b' AS city "
        "FROM read_text('/etc/passwd')"
    ),
    (
        "SELECT pg_read_file('/etc/passwd') AS msisdn, 'x' AS idremote, 'a' AS first_name, "
        "'b' AS city"
    ),
    "WITH gone AS (DELETE FROM sms_optouts RETURNING *) SELECT * FROM audience",
    "COPY sms_optouts TO '/tmp/smsdrop-stolen.csv'",
]


def _sms_tables() -> dict[str, list]:
    with warehouse_from_connection() as warehouse:
        _, rows = warehouse._query(
            "SELECT table_name FROM information_schema.tables WHERE left(table_name, 4) = "
            "'sms_' AND table_type = 'BASE TABLE' AND table_schema = current_schema()"
        )
        return {t: sorted(map(str, warehouse._query(f"SELECT * FROM {t}")[1])) for (t,) in rows}


def test_an_injected_audience_changes_nothing_and_uploads_nothing(
    sandbox: Sandbox, campaign: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even where a deployment allows free SELECTs, each attempt fails at ``start`` (parsed
    before any connection), leaving every sms_* table as it was and the drop box empty."""
    monkeypatch.setenv("SMSDROP_ALLOW_SELECT_AUDIENCE", "1")
    before = _sms_tables()
    assert before["sms_optouts"]
    for number, audience in enumerate(INJECTIONS):
        run = _run(sandbox, audience=audience, campaign_id=f"inject{number}")
        states = {t: s for t, (s, _) in task_states(run).items()}
        assert str(run.state) == "failed" and states["start"] == "failed", (audience, states)
        assert states["extract"] != "success"
        assert _sms_tables() == before, audience
    assert not sandbox.events("file_received")
    assert not Path("/tmp/smsdrop-stolen.csv").exists()


# --- the opt-out guarantee ----------------------------------------------------------------

LATE_DETAIL = "opted out after the file was written, before its upload"


def _prepared_numbers(campaign: dict[str, Any], tmp_path: Path, count: int) -> list[str]:
    """``count`` numbers the campaign's SEND files will hold (prepared as the DAG will)."""
    from smsdrop.csvfile import read_records
    from smsdrop.prepare import prepare
    from smsdrop.spec import CampaignSpec

    audience = tmp_path / "peek.parquet"
    synthetic.write_audience(campaign["frame"], audience)
    spec = CampaignSpec.from_mapping(CONF)
    out = tmp_path / "peek"
    summary = prepare(audience, spec, out, optouts=pd.Series(sorted(campaign["optouts"])))
    first = out / summary.files[0]["name"]
    numbers = read_records(first.read_bytes(), first.name).table.column("msisdn").to_pylist()
    return numbers[5 : 5 + count]


def _publish(sandbox: Sandbox, kind: str, lines: list[str]) -> None:
    """A report as the provider publishes it, in ``Report/`` (of an earlier campaign)."""
    path = sandbox.layout.report / f"{kind}-12345-20261130-0900-earlier.csv"
    path.write_bytes("".join(f"{line}\r\n" for line in lines).encode())


def test_an_optout_published_before_the_upload_is_honoured(
    sandbox: Sandbox, campaign: dict[str, Any], tmp_path: Path
) -> None:
    """STOP and SMS-MO opt-outs published after the warehouse's last load (so after the
    files were prepared from it) but before the upload: removed from the file, rejected
    OPTED_OUT on their rows, the file's new SHA-256 and size recorded, none of them sent."""
    late = _prepared_numbers(campaign, tmp_path, 3)
    _publish(
        sandbox, "STOP", [f"{late[0]};20261130;101500;STOP;x1", f"{late[1]};20261130;1016;Arret;x2"]
    )
    _publish(sandbox, "SMSMO", [f"{late[2]};20261130;101700;STOP merci;x3"])

    run = _run(sandbox)
    states = task_states(run)
    assert str(run.state) == "success", states
    summary = xcom(run, "prepare")["summary"]
    sent = _sent(sandbox)
    assert not set(sent) & set(late)
    assert sum(sent.values()) + len(sandbox.events("message_not_sent")) == summary["valid"] - 3
    rejected = _query(
        "SELECT reason, detail, idremote FROM sms_rejected_rows WHERE campaign_id = %s"
        " AND detail = %s",
        "spring",
        LATE_DETAIL,
    )
    assert len(rejected) == 3 and set(rejected["reason"]) == {"OPTED_OUT"}
    counts = _query(
        "SELECT valid, rejected, opted_out FROM sms_campaigns WHERE campaign_id = %s", "spring"
    )
    assert int(counts["valid"].iloc[0]) == summary["valid"] - 3
    assert int(counts["rejected"].iloc[0]) == summary["rejected"] + 3
    assert int(counts["opted_out"].iloc[0]) == summary["opted_out"] + 3
    all_rejects = _query(
        "SELECT count(*) AS n FROM sms_rejected_rows WHERE campaign_id = %s", "spring"
    )
    assert int(counts["valid"].iloc[0]) + int(all_rejects["n"].iloc[0]) == ROWS
    first = summary["files"][0]
    recorded = _query(
        "SELECT row_count, byte_count, sha256 FROM sms_campaign_files WHERE name = %s",
        first["name"],
    )
    received = {e["name"]: e["bytes"] for e in sandbox.events("file_received")}
    assert int(recorded["row_count"].iloc[0]) == first["rows"] - 3
    assert int(recorded["byte_count"].iloc[0]) == received[first["name"]]
    assert recorded["sha256"].iloc[0] != first["sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
def test_the_upload_waits_for_the_slot_less_the_lead(
    sandbox: Sandbox, campaign: dict[str, Any], slot: datetime
) -> None:
    """upload_at = slot - upload_lead_minutes, 90 to 150 s from now: the sensor starts before
    it, defers, and the uploads start after it, not before."""
    lead = int((slot - datetime.now(UTC) - timedelta(seconds=90)).total_seconds() // 60)
    upload_at = slot - timedelta(minutes=lead)
    run = _run(sandbox, upload_lead_minutes=lead, campaign_id="waits")
    states = task_states(run)
    assert str(run.state) == "success", states
    assert xcom(run, "record_names") and states["wait_upload_time"][0] == "success"
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter_by(run_id=run.run_id).all()
        sensor = next(ti for ti in rows if ti.task_id == "wait_upload_time")
        starts = [ti.start_date for ti in rows if ti.task_id == "upload"]
    assert sensor.start_date < upload_at, "the sensor started after upload_at: nothing proven"
    assert starts and min(starts) >= upload_at - timedelta(seconds=1)
    assert sensor.end_date >= upload_at - timedelta(seconds=1)


@pytest.mark.slow
@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
def test_a_failed_refresh_with_a_stale_list_stops_the_upload(
    sandbox: Sandbox,
    campaign: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The refresh before the upload fails (a report cannot be read: injected, the sandbox
    has no such fault) and no complete load is recent: nothing is uploaded, the error says
    why. With a complete load a minute old, the same failure only warns."""
    _publish(sandbox, "STOP", ["+33600000001;20261130;101500;STOP;x1"])

    def unreadable(*args: Any, **kwargs: Any) -> None:
        raise OSError("report unreadable")

    monkeypatch.setattr("smsdrop.airflow.reports_task._load_file", unreadable)
    dag = _dag()
    dag.get_task("upload").retries = 0
    with sandbox.fast_forward():
        run = run_dag(dag, run_conf={**CONF, "campaign_id": "stale"})
    states = task_states(run)
    assert str(run.state) == "failed" and states["upload"][0] == "failed", states
    assert not sandbox.events("file_received")
    out, err = capfd.readouterr()
    assert "could not be refreshed" in out + err and "was never" in out + err

    with warehouse_from_connection() as warehouse:
        now = datetime.now(UTC)
        warehouse.record_optout_load(now - timedelta(minutes=1), now, {})
    run = _run(sandbox, campaign_id="fresh")
    assert str(run.state) == "success", task_states(run)
    assert sandbox.events("file_received")


@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
def test_a_send_time_beyond_the_horizon_is_refused(
    sandbox: Sandbox, campaign: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    far = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    run = _run(sandbox, send_at=far, max_days_ahead=2, campaign_id="far")
    states = {t: s for t, (s, _) in task_states(run).items()}
    assert str(run.state) == "failed" and states["start"] == "failed", states
    assert "more than 2 day(s) ahead" in "".join(capfd.readouterr())
    assert not sandbox.events("file_received")
