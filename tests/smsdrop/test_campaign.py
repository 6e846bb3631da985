"""Audience queries, nightly entries and the data contract (no Airflow)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from smsdrop import nightly
from smsdrop.audience import AUDIENCE_SQL_DIR, audience_query
from smsdrop.csvfile import encode_records
from smsdrop.errors import InputError
from smsdrop.record_rules import Rules
from smsdrop.upload_contract import check_files


def test_audience_is_a_table_a_query_file_or_an_allowed_select(tmp_path: Path) -> None:
    (tmp_path / "vip.sql").write_text("SELECT * FROM customers WHERE vip;\n")
    assert audience_query("crm.audience", sql_dir=tmp_path) == "SELECT * FROM crm.audience"
    assert audience_query("vip.sql", sql_dir=tmp_path) == "SELECT * FROM customers WHERE vip"
    with pytest.raises(InputError, match="a free SELECT is off"):
        audience_query("SELECT 1 AS x", sql_dir=tmp_path)
    assert audience_query("SELECT 1 AS x", sql_dir=tmp_path, allow_select=True) == "SELECT 1 AS x"
    with pytest.raises(InputError, match=r"no such query file \(there are: vip.sql\)"):
        audience_query("other.sql", sql_dir=tmp_path)
    assert AUDIENCE_SQL_DIR.is_dir()  # where the DAG looks


# --- nightly ------------------------------------------------------------------------------


def _nightly(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nightly.yaml"
    path.write_text(text)
    return path


ENTRY = """
campaigns:
  - campaign_id: "promo{date}"
    service_id: "12345"
    audience: audience
    message: "Bonjour {first_name}"
    sender: SHOP
    send_time: "10:00"
    days: [mon, sat]
  - campaign_id: "off"
    enabled: false
"""


def test_nightly_entries_become_runs_on_their_days(tmp_path: Path) -> None:
    path = _nightly(tmp_path, ENTRY)
    monday = nightly.runs_for(date(2026, 11, 30), path)
    assert [r["trigger_run_id"] for r in monday] == ["nightly__promo20261130"]
    assert monday[0]["conf"]["send_at"] == "2026-11-30T10:00:00+01:00"
    assert monday[0]["conf"]["campaign_id"] == "promo20261130"
    assert nightly.runs_for(date(2026, 12, 1), path) == []  # a Tuesday


def test_a_bad_nightly_entry_is_named(tmp_path: Path) -> None:
    path = _nightly(tmp_path, ENTRY.replace("sender: SHOP", "sender: 'SHOP & CO'"))
    with pytest.raises(InputError, match="nightly.yaml entry 1: .*field sender"):
        nightly.runs_for(date(2026, 11, 30), path)
    broken = _nightly(tmp_path, "campaigns:\n  - [unclosed\n")
    with pytest.raises(InputError) as caught:
        nightly.read_entries(broken)
    assert caught.value.file == str(broken) and caught.value.line


def test_the_shipped_nightly_file_reads() -> None:
    assert nightly.read_entries()  # the example entry
    assert nightly.runs_for(date(2026, 11, 30)) == []  # disabled


# --- the data contract --------------------------------------------------------------------


def _send_file(tmp_path: Path, name: str, rows: list[tuple[str, str, str, str]]) -> Path:
    frame = pd.DataFrame(rows, columns=["idremote", "msisdn", "oadc", "msg"])
    import pyarrow as pa

    path = tmp_path / name
    path.write_bytes(encode_records(pa.Table.from_pandas(frame, preserve_index=False)))
    return path


def test_the_contract_passes_a_good_file_and_counts_what_breaks_it(tmp_path: Path) -> None:
    good = _send_file(tmp_path, "a.csv", [("C1", "+33612345678", "SHOP", "Hello"),
                                          ("C2", "+33612345679", "SHOP", "Hello")])  # fmt: skip
    assert check_files([good], Rules(), pd.Series([], dtype="string")).success

    bad = _send_file(
        tmp_path,
        "b.csv",
        [
            ("C3", "+33612345670", "SHOP", "x" * 161),  # two segments
            ("C4", "0612345671", "SHOP", "Hi"),  # not E.164
            ("C5", "+33612345672", "SHOP", "Hi"),  # opted out
            ("C6", "+33612345678", "SHOP", "Hi"),  # also in a.csv
        ],
    )
    result = check_files([good, bad], Rules(), pd.Series(["+33612345672"]))
    assert not result.success
    failed = {(e["file"], e["expectation"]): e["unexpected_count"] for e in result.failures}
    assert failed == {
        ("b.csv", "expect_column_values_to_be_between"): 1,
        ("b.csv", "expect_column_values_to_match_regex"): 1,
        ("b.csv", "expect_column_values_to_not_be_in_set"): 1,
        ("*", "expect_msisdn_unique_across_files"): 1,
    }
    assert "+336" not in result.describe_failures()  # counts, never numbers
    assert result.as_dict()["rows"] == 6
    assert (
        check_files([bad], Rules(long_sms=True), pd.Series(["+33612345672"])).failures[0][
            "expectation"
        ]
        != "expect_column_values_to_be_between"
    )


def test_a_past_slot_is_uploaded_only_while_the_window_is_open() -> None:
    from datetime import datetime

    from smsdrop.campaign import slot_problem
    from smsdrop.naming import PARIS

    saturday = datetime(2026, 12, 5, 21, 59, tzinfo=PARIS)
    assert slot_problem(saturday, ["FR"], None, saturday.replace(hour=20)) is None  # future
    assert slot_problem(saturday, ["FR"], None, saturday.replace(minute=59, second=50)) is None
    late = slot_problem(saturday, {"FR": 3}, None, saturday.replace(hour=22, minute=5))
    assert late and "has passed" in late and "FR" in late
    sunday = datetime(2026, 12, 6, 10, 0, tzinfo=PARIS)
    assert slot_problem(saturday, ["FR"], None, sunday)
    assert slot_problem(saturday, ["FR"], "20:00", saturday.replace(hour=21, minute=59, second=1))
    assert slot_problem(saturday, ["BE"], None, sunday) is None  # no window rules there


def test_a_campaign_prepared_again_keeps_only_this_attempts_rejects(tmp_path: Path) -> None:
    """Rejects are saved as the preparation streams; an attempt that stopped (a budget
    stop, a crash) must not leave its reasons for the next one, whose opt-outs differ."""
    from datetime import UTC, datetime

    from campaigns import campaign_spec

    from smsdrop.campaign import AUDIENCE_FILE, prepare_staged
    from smsdrop.warehouse import DuckDBWarehouse

    staging = tmp_path / "staging"
    staging.mkdir()
    pd.DataFrame(
        {"idremote": ["A1", "A2", "A3"], "msisdn": ["+33612345601", "+33612345602", "12"]}
    ).to_parquet(staging / AUDIENCE_FILE)
    path = tmp_path / "warehouse.duckdb"
    with DuckDBWarehouse(path) as wh:
        wh.migrate()
        wh.upsert_optouts(pd.DataFrame({"msisdn": ["+33612345602"]}), "import")

    def attempt() -> list[tuple[int, str]]:
        spec = campaign_spec(message="Promo STOP au 36111", sender="SHOP")
        now = datetime(2026, 12, 1, 9, tzinfo=UTC)
        prepare_staged(lambda: DuckDBWarehouse(path), spec, staging, now=now)
        with DuckDBWarehouse(path) as wh:
            rows = wh.query_frame("SELECT source_row, reason FROM sms_rejected_rows ORDER BY 1")
        return list(rows.itertuples(index=False, name=None))

    assert attempt() == [(2, "OPTED_OUT"), (3, "MSISDN_INVALID")]
    with DuckDBWarehouse(path) as wh:  # the opt-out is withdrawn before the next attempt
        wh.query_frame("DELETE FROM sms_optouts RETURNING msisdn")
    assert attempt() == [(3, "MSISDN_INVALID")]


def test_the_contract_beside_preparation_sees_an_opt_out_that_arrived_meanwhile(
    tmp_path: Path,
) -> None:
    """``prepare_staged(contract=True)``: the files are checked in a process of their own as
    they are written; an opt-out stored while the campaign was being prepared (here, when
    the rejects are saved) is found at the end, by number, and breaks the contract."""
    from datetime import UTC, datetime

    from campaigns import campaign_spec

    from smsdrop.campaign import AUDIENCE_FILE, prepare_staged
    from smsdrop.warehouse import DuckDBWarehouse

    staging = tmp_path / "staging"
    staging.mkdir()
    numbers = [f"+336123456{i:02d}" for i in range(12)]
    pd.DataFrame({"idremote": [f"A{i}" for i in range(12)], "msisdn": [*numbers[:11], "12"]}
                 ).to_parquet(staging / AUDIENCE_FILE)  # fmt: skip
    path = tmp_path / "warehouse.duckdb"
    with DuckDBWarehouse(path) as wh:
        wh.migrate()
    opened = []

    def open_warehouse() -> DuckDBWarehouse:
        warehouse = DuckDBWarehouse(path)
        opened.append(1)
        if len(opened) == 2:  # the rejects' save, mid-preparation
            with DuckDBWarehouse(path) as other:
                other.upsert_optouts(pd.DataFrame({"msisdn": [numbers[4]]}), "import")
        return warehouse

    spec = campaign_spec(message="Promo STOP au 36111", sender="SHOP")
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    summary = prepare_staged(open_warehouse, spec, staging, now=now, max_records=4,
                             contract=True)  # fmt: skip
    contract = summary.contract
    assert contract is not None and [f["rows"] for f in summary.files] == [4, 4, 3]
    assert contract["files"] == 3 and contract["rows"] == 11 == summary.valid
    failed = [(e["file"], e["expectation"], e["unexpected_count"])
              for e in contract["expectations"] if not e["success"]]  # fmt: skip
    assert failed == [("*", "expect_msisdn_not_in_later_optouts", 1)]
    names = {e["file"] for e in contract["expectations"]}
    assert names == {f["name"] for f in summary.files} | {"*"}
    assert not list(staging.glob("*.partial"))
