"""Staged personal data is private: a run's staging folders 0700, its files 0600, the
embedded warehouse file 0600 (the extract and prepare tasks' functions, real DuckDB)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest

from smsdrop import synthetic
from smsdrop.airflow import campaign_tasks
from smsdrop.airflow.warehouse import DuckDBHook, warehouse_from_connection

pytestmark = pytest.mark.usefixtures("airflow_db")

REQUEST = {
    "campaign_id": "private1",
    "service_id": "12345",
    "audience": "audience",
    "message": "Bonjour {first_name} ! STOP au 36111",
    "sender": "SHOP",
    "encoding_policy": "transliterate",
}


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
def test_staged_files_and_folders_are_private(
    warehouse_conn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    os.umask(0o022)  # the usual umask: what is private must be made so
    # prepare reads the account's options from the provider connection (no extras: the
    # spec's defaults); nothing here connects to it.
    conn = {"conn_type": "sftp", "host": "127.0.0.1", "login": "sandbox"}
    monkeypatch.setenv("AIRFLOW_CONN_MTARGET_DEFAULT", json.dumps(conn))
    root = tmp_path / "deep" / "staging"
    monkeypatch.setenv("SMSDROP_STAGING", root.as_uri())
    with warehouse_from_connection() as warehouse:
        warehouse.migrate()
        frame = synthetic.audience(500)
        warehouse.replace_table("audience", pa.Table.from_pandas(frame, preserve_index=False))
    extracted = campaign_tasks.extract(dict(REQUEST), "manual__1")
    folder = Path(extracted["staging"].removeprefix("file://"))
    assert _mode(folder / "audience.parquet") == "0o600"
    prepared = campaign_tasks.prepare(dict(REQUEST), extracted)

    created = [folder, *[p for p in folder.parents if root in (p, *p.parents)]]
    assert created and all(_mode(p) == "0o700" for p in created), [(p, _mode(p)) for p in created]
    files = [p for p in folder.iterdir() if p.is_file()]
    names = {p.name for p in files}
    assert "rejects.csv" in names and any(n.startswith("SEND-") for n in names)
    assert any(n.endswith(".rows.npy") for n in names)
    assert all(_mode(p) == "0o600" for p in files), [(p.name, _mode(p)) for p in files]
    assert "audience.parquet" not in names  # removed once the preparation read it
    assert prepared["files"]
    db = DuckDBHook().path
    assert _mode(db) == "0o600"
