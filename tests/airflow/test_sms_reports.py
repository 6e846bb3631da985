"""The ``sms_reports`` DAG end to end: ``dag.test()`` against the sandbox, on DuckDB and on
PostgreSQL (the ``smsdrop_warehouse`` connection of each type).

A SEND file is sent first (the sandbox only takes replies from numbers it sent to); then
replies are injected, the DAG runs, and the warehouse is compared with what was injected.
Numbers are compared, never printed: assertion messages show masked numbers only.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from smsdrop.airflow.hooks import MTargetHook, send_name
from smsdrop.airflow.reports_task import RefreshFailed, load_reply_reports, refresh_optouts
from smsdrop.airflow.warehouse import (
    DuckDBHook,
    duckdb_path,
    postgres_dsn,
    warehouse_from_connection,
)
from smsdrop.msisdn import mask_one
from smsdrop.naming import PARIS, FileKind
from smsdrop.reports import write_reply_line
from smsdrop.warehouse import DuckDBWarehouse, PostgresWarehouse, Warehouse
from tests.airflow.conftest import postgres_conn
from tests.airflow.support import msisdns, run_dag, task_logs, task_states, write_send, xcom
from tests.warehouse.conftest import PG_ADMIN_DSN

pytestmark = pytest.mark.usefixtures("airflow_db")
ROOT = Path(__file__).resolve().parents[2]
NAME = "SEND-12345-20261201-0800-replies.csv"
STOP = send_name(NAME).with_kind(FileKind.STOP).name
SMSMO = send_name(NAME).with_kind(FileKind.SMSMO).name
CHATTY = "Merci, a samedi au magasin"


def _masked(numbers: Any) -> list[str]:
    return sorted(mask_one(str(n)) for n in numbers)


def _load_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "sms_reports.py"))
    assert bag.import_errors == {}
    return bag.dags["sms_reports"]


def _asset_events(run: Any) -> list[dict]:
    """Extras of the ``smsdrop://optouts`` Asset events ``run`` emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetModel.name == "smsdrop://optouts", AssetEvent.source_run_id == run.run_id)
            .order_by(AssetEvent.id)
            .all()
        )
        return [dict(row.extra) for row in rows]


def _state() -> dict[str, Any]:
    with warehouse_from_connection() as wh:
        optouts = wh.query_frame("SELECT msisdn, source FROM sms_optouts ORDER BY msisdn")
        replies = wh.query_frame("SELECT msisdn, message, is_stop, file FROM sms_replies")
        return {
            "optouts": list(zip(optouts["msisdn"], optouts["source"], strict=True)),
            "replies": sorted(
                zip(replies["msisdn"], replies["message"], replies["is_stop"], strict=True)
            ),
            "offsets": {name: wh.get_offset(name) for name in (STOP, SMSMO)},
        }


def test_replies_and_optouts_loaded_incrementally_and_idempotently(
    make_sandbox, connect, warehouse_conn, tmp_path: Path, capfd, caplog
) -> None:
    sandbox = make_sandbox(stop_rate=0, mo_rate=0)  # only the replies injected here
    connect(sandbox.port)
    hook = MTargetHook()
    hook.upload_atomic(write_send(tmp_path, NAME, 10), NAME)
    sandbox.wait_for("batch_done", file=NAME)
    numbers = msisdns(10)
    sandbox.reply(numbers[1], "STOP")
    sandbox.reply(numbers[2], CHATTY)
    dag = _load_dag()
    started = time.time()
    sessions = len(sandbox.events("connection_accepted"))

    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert len(sandbox.events("connection_accepted")) == sessions + 1  # one for every report
    counts = xcom(run, "load_reply_reports")
    assert counts == {
        "files": 2,
        "files_read": 2,
        "bytes": counts["bytes"],
        "rows": 3,  # the STOP line, and both replies in SMSMO
        "quarantined": 0,
        "cleaned": 0,
        "replies": 2,
        "failed": 0,
        "optouts": 1,  # the STOP (its SMSMO copy finds it there already)
    }
    state = _state()
    assert [n for n, _ in state["optouts"]] == [numbers[1]], _masked(state["optouts"])
    assert {n for n, *_ in state["replies"]} == {numbers[1], numbers[2]}
    assert {(m, s) for _, m, s in state["replies"]} == {("STOP", True), (CHATTY, False)}
    sizes = {name: hook.report_size(name) for name in (STOP, SMSMO)}
    assert state["offsets"] == sizes
    assert counts["bytes"] == sum(sizes.values())
    assert _asset_events(run)[-1] == counts  # the Asset's event carries the counts

    again = run_dag(dag)  # nothing new: nothing changes
    assert str(again.state) == "success"
    assert xcom(again, "load_reply_reports")["files_read"] == 0
    assert _state() == state
    assert _asset_events(again) == []  # no new opt-out: no Asset event
    assert task_states(again)["announce_optouts"][0] == "skipped"

    sandbox.reply(numbers[5], "arret")  # appended to both reports
    sandbox.reply(numbers[6], "ok pour samedi")
    third = run_dag(dag)
    assert str(third.state) == "success"
    counts3 = xcom(third, "load_reply_reports")
    new_sizes = {name: hook.report_size(name) for name in (STOP, SMSMO)}
    assert counts3["bytes"] == sum(new_sizes[n] - sizes[n] for n in sizes)  # only the new bytes
    assert counts3["rows"] == 3 and counts3["replies"] == 2 and counts3["optouts"] == 1
    final = _state()
    assert [n for n, _ in final["optouts"]] == sorted([numbers[1], numbers[5]])
    assert len(final["replies"]) == 4
    assert final["offsets"] == new_sizes

    output = "".join(capfd.readouterr()) + caplog.text + task_logs("sms_reports", started)
    for number in numbers:
        assert number not in output and number[1:] not in output, mask_one(number)
    assert "reply reports loaded" in output  # the task log is really looked at
    assert CHATTY not in output and "ok pour samedi" not in output


def _garbage(numbers: list[str]) -> tuple[bytes, int]:
    """Lines appended to a STOP report: bad ones among good ones; (bytes, lines set aside)."""
    at = "20261201;093000"
    lines = [
        b"\0\0\0\r\n",  # NULs only: one field
        f"{numbers[4]};{at};STOP ".encode() + b"\xff;R4\r\n",  # bad UTF-8: cleaned, loaded
        f"{numbers[5]};{at};STOP\r\n".encode(),  # a field missing
        f"appelle moi;{at};STOP;R6\r\n".encode(),  # no number anybody could be suppressed with
        f"{numbers[7]};20261301;093000;STOP;R7\r\n".encode(),  # no 13th month
        f"{numbers[8]};{at};STOP;R8\r\n".encode(),  # good, after all of them
    ]
    return b"".join(lines), 4


def test_bad_records_are_set_aside_and_the_rest_loaded(
    make_sandbox, connect, warehouse_conn, tmp_path: Path, capfd, caplog
) -> None:
    sandbox = make_sandbox(stop_rate=0, mo_rate=0)
    connect(sandbox.port)
    hook = MTargetHook()
    hook.upload_atomic(write_send(tmp_path, NAME, 10), NAME)
    sandbox.wait_for("batch_done", file=NAME)
    numbers = msisdns(10)
    sandbox.reply(numbers[1], "STOP")
    garbage, bad = _garbage(numbers)
    with (sandbox.layout.root / "Report" / STOP).open("ab") as out:  # the provider's bytes
        out.write(garbage)
    started = time.time()

    run = run_dag(_load_dag())
    assert str(run.state) == "success", task_states(run)
    counts = xcom(run, "load_reply_reports")
    assert (counts["quarantined"], counts["cleaned"], counts["optouts"]) == (
        bad,
        4,
        3,
    )  # 3 NULs, 1 bad byte
    state = _state()
    assert [n for n, _ in state["optouts"]] == sorted([numbers[1], numbers[4], numbers[8]])
    assert state["offsets"] == {name: hook.report_size(name) for name in (STOP, SMSMO)}
    with warehouse_from_connection() as wh:
        aside = wh.query_frame(
            "SELECT file, byte_offset, byte_length, field, reason, raw_masked"
            " FROM sms_report_quarantine ORDER BY byte_offset"
        )
        assert wh.last_optout_load() is not None
    assert list(aside["field"]) == ["DATE", "IDREMOTE", "MSISDN", "DATE"]
    assert set(aside["file"]) == {STOP}
    size = hook.report_size(STOP)
    assert int(aside["byte_offset"].iloc[0]) == size - len(garbage)  # where the bytes are
    bad_lines = [line for line in garbage.splitlines(keepends=True) if b";R4" not in line]
    assert list(aside["byte_length"]) == [len(line) for line in bad_lines[:4]]
    stored = " ".join(aside["raw_masked"]) + " ".join(aside["reason"])
    for number in numbers:
        assert number not in stored and number[1:] not in stored, mask_one(number)
    assert "\0" not in stored

    again = run_dag(_load_dag())  # nothing new: nothing set aside twice
    assert xcom(again, "load_reply_reports")["quarantined"] == 0
    with warehouse_from_connection() as wh:
        assert len(wh.query_frame("SELECT * FROM sms_report_quarantine")) == bad

    output = "".join(capfd.readouterr()) + caplog.text + task_logs("sms_reports", started)
    assert "set aside" in output  # the task log is really looked at
    for number in numbers:
        assert number not in output and number[1:] not in output, mask_one(number)


@pytest.fixture
def sent(make_sandbox, connect, tmp_path: Path, monkeypatch) -> Any:
    """A sandbox that sent NAME to 10 numbers; ``smsdrop_warehouse`` is a DuckDB file."""
    document = {"conn_type": "duckdb", "extra": {"path": str(tmp_path / "wh.duckdb")}}
    monkeypatch.setenv("AIRFLOW_CONN_SMSDROP_WAREHOUSE", json.dumps(document))
    sandbox = make_sandbox(stop_rate=0, mo_rate=0)
    connect(sandbox.port)
    MTargetHook().upload_atomic(write_send(tmp_path, NAME, 10), NAME)
    sandbox.wait_for("batch_done", file=NAME)
    return sandbox


def test_a_half_written_last_line_waits_for_the_next_run(sent) -> None:
    numbers = msisdns(10)
    sent.reply(numbers[1], "STOP")
    assert load_reply_reports()["optouts"] == 1
    path = sent.layout.root / "Report" / STOP
    line = write_reply_line(numbers[4], datetime(2026, 12, 1, 9, 30, tzinfo=UTC), "Stop", "R9")
    with path.open("ab") as out:  # the provider caught mid-write
        out.write(line[:-7])
    counts = load_reply_reports()
    assert counts["files_read"] == 0 and counts["optouts"] == 0
    assert _state()["offsets"][STOP] == path.stat().st_size - len(line[:-7])
    with path.open("ab") as out:
        out.write(line[-7:])
    counts = load_reply_reports()
    assert counts["files_read"] == 1 and counts["rows"] == 1 and counts["optouts"] == 1
    assert _state()["offsets"][STOP] == path.stat().st_size
    assert [n for n, _ in _state()["optouts"]] == sorted([numbers[1], numbers[4]])


def test_a_failed_load_keeps_no_row_and_the_offset(sent, monkeypatch) -> None:
    numbers = msisdns(10)
    sent.reply(numbers[2], "ARRÊT")

    def broken(self: Any, report_name: Any, offset: int) -> None:
        raise RuntimeError("the warehouse went away")

    with monkeypatch.context() as patch:
        patch.setattr(Warehouse, "set_offset", broken)
        counts = load_reply_reports()  # each file failed on its own: counted, not raised
    assert (counts["failed"], counts["files_read"], counts["optouts"]) == (2, 0, 0)
    state = _state()
    assert state["optouts"] == [] and state["replies"] == []
    assert state["offsets"] == {STOP: 0, SMSMO: 0}
    counts = load_reply_reports()  # the next run
    assert counts["files_read"] == 2 and counts["optouts"] == 1 and counts["replies"] == 1
    assert [n for n, _ in _state()["optouts"]] == [numbers[2]]


def test_no_connection_means_the_default_duckdb_file(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SMSDROP_WAREHOUSE", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert duckdb_path() == tmp_path / "var" / "warehouse.duckdb"
    assert DuckDBHook().path == tmp_path / "var" / "warehouse.duckdb"
    with warehouse_from_connection() as wh:
        assert isinstance(wh, DuckDBWarehouse)
        assert wh.migrate()
    assert (tmp_path / "var" / "warehouse.duckdb").is_file()


def test_duckdb_hook_runs_sql_on_the_connection_file(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    document = {"conn_type": "duckdb", "host": "data/wh.duckdb"}
    monkeypatch.setenv("AIRFLOW_CONN_SMSDROP_WAREHOUSE", json.dumps(document))
    hook = DuckDBHook()
    assert hook.path == tmp_path / "data" / "wh.duckdb"  # relative: under AIRFLOW_HOME
    assert hook.get_first("SELECT 40 + 2") == (42,)
    with warehouse_from_connection() as wh:
        assert isinstance(wh, DuckDBWarehouse)
        wh.migrate()
    assert hook.get_records("SELECT count(*) FROM sms_optouts") == [(0,)]


def test_postgres_connection_builds_a_dsn(monkeypatch, pg_database: str) -> None:
    dbname = pg_database.split("dbname=")[1].split()[0]
    document = postgres_conn(dbname, sslmode="disable", unrelated="x")
    monkeypatch.setenv("AIRFLOW_CONN_SMSDROP_WAREHOUSE", json.dumps(document))
    from airflow.sdk import BaseHook

    dsn = postgres_dsn(BaseHook.get_connection("smsdrop_warehouse"))
    assert f"dbname={dbname}" in dsn and "sslmode=disable" in dsn and "unrelated" not in dsn
    with warehouse_from_connection() as wh:
        assert isinstance(wh, PostgresWarehouse)
        wh.migrate()
        assert wh.get_offset("STOP-1-20261201-0800-x.csv") == 0


def test_other_connection_types_are_refused(monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSDROP_WAREHOUSE", json.dumps({"conn_type": "mysql", "host": "h"})
    )
    with pytest.raises(ValueError, match="'duckdb' or 'postgres'"):
        warehouse_from_connection()


assert PG_ADMIN_DSN  # the admin DSN the imported fixture uses (SMSDROP_TEST_PG_DSN)


def test_one_failing_file_does_not_stop_the_others(sent) -> None:
    numbers = msisdns(10)
    sent.reply(numbers[1], "STOP")
    hook = MTargetHook()
    with warehouse_from_connection() as wh:
        wh.migrate()
        wh.set_offset(SMSMO, 10**6)  # as if SMSMO had been replaced by a shorter file
        with pytest.raises(RefreshFailed) as info:
            refresh_optouts(hook, wh)
        assert list(info.value.failed) == [SMSMO] and "replaced" in str(info.value)
        assert info.value.result.optouts == 1  # STOP went through
        assert wh.last_optout_load() is None  # not a successful refresh
        assert [n for n in wh.optout_numbers()] == [numbers[1]]
        wh.set_offset(SMSMO, 0)
        before = datetime.now(UTC)
        result = refresh_optouts(hook, wh)
        assert (result.files, result.files_read, result.replies) == (2, 1, 1)
        assert result.finished_at is not None
        last = wh.last_optout_load()
        assert last is not None and before <= last <= datetime.now(UTC)
        assert last == result.finished_at.replace(microsecond=last.microsecond)


def test_a_failing_file_fails_the_run_after_the_others_are_announced(sent) -> None:
    numbers = msisdns(10)
    sent.reply(numbers[1], "STOP")
    with warehouse_from_connection() as wh:
        wh.migrate()
        wh.set_offset(SMSMO, 10**6)  # SMSMO cannot be read
    run = run_dag(_load_dag())
    assert str(run.state) == "failed"
    states = {task: state for task, (state, _) in task_states(run).items()}
    assert states == {
        "load_reply_reports": "success",
        "new_optouts": "success",
        "announce_optouts": "success",  # STOP's opt-out is announced all the same
        "check_failures": "failed",
    }
    assert xcom(run, "load_reply_reports")["failed"] == 1
    assert _asset_events(run)[-1]["optouts"] == 1
    with warehouse_from_connection() as wh:
        assert wh.last_optout_load() is None


def test_a_refresh_is_one_sftp_session_stop_first(sent, caplog) -> None:
    numbers = msisdns(10)
    sent.reply(numbers[1], "STOP")
    sent.reply(numbers[2], CHATTY)
    before = len(sent.events("connection_accepted"))
    with warehouse_from_connection() as wh, caplog.at_level("INFO"):
        wh.migrate()
        result = refresh_optouts(MTargetHook(), wh)
    assert len(sent.events("connection_accepted")) == before + 1
    assert result.files_read == 2
    loaded = [
        r.getMessage().split(":")[0] for r in caplog.records if "records loaded" in r.getMessage()
    ]
    assert loaded == [STOP, SMSMO]


def _old(name: str, data: bytes, root: Path, *, age: float = 2 * 86400) -> Path:
    path = root / "Report" / name
    path.write_bytes(data)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_tidy_remote_removes_rejects_and_old_loaded_reports(sent, tmp_path: Path) -> None:
    from smsdrop.airflow import campaign_tasks

    bad = "SEND-12345-20261201-0800-rejected.csv"
    hook = MTargetHook()
    hook.upload_atomic(write_send(tmp_path, bad, 3, bad_row=2), bad)
    sent.wait_for("file_rejected", name=bad)
    line = write_reply_line(msisdns(1)[0], datetime(2025, 1, 5, 9, tzinfo=UTC), "STOP", "C1")
    root = sent.layout.root
    today = datetime.now(PARIS).strftime("%Y%m%d")
    old_stop = _old("STOP-12345-20250101-0800-old.csv", line, root)
    unread = _old("SMSMO-12345-20250101-0800-old.csv", line, root)
    busy = _old("STOP-12345-20250102-0800-busy.csv", line, root, age=60)
    recent = _old(f"STOP-12345-{today}-0000-recent.csv", line, root)
    old_ack = _old("ACK-12345-20250101-0800-old.csv", b"", root)
    with warehouse_from_connection() as wh:
        wh.migrate()
        for path in (old_stop, busy, recent):
            wh.set_offset(path.name, len(line))
        with wh.transaction():
            wh._execute(
                "INSERT INTO sms_deliveries (file, msisdn, idstatus) VALUES (%s, '+33612000000', 1)",
                (old_ack.name,),
            )
    send = root / "Send"
    assert (send / NAME.replace(".csv", ".done")).exists()
    assert (send / bad.replace(".csv", ".reject")).exists()

    removed = campaign_tasks.tidy_remote([{"remote_name": NAME}, {"remote_name": bad}])
    assert removed == 4  # NAME.done, bad.reject, the old loaded STOP and ACK
    assert not (send / NAME.replace(".csv", ".done")).exists()
    assert not (send / bad.replace(".csv", ".reject")).exists()
    assert not old_stop.exists() and not old_ack.exists()
    assert unread.exists() and busy.exists() and recent.exists()  # not loaded, busy, recent
    with warehouse_from_connection() as wh:
        assert wh.get_offset(old_stop.name) == 0  # a new file of that name is read whole
        assert wh.get_offset(busy.name) == len(line)
    assert campaign_tasks.tidy_remote([{"remote_name": NAME}]) == 0  # nothing left to do
