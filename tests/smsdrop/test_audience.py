"""The audience parameter is not a SQL console: what smsdrop.audience refuses, and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdrop.audience import ALLOW_SELECT_ENV, audience_query, check_select, select_allowed
from smsdrop.errors import InputError
from smsdrop.spec import CampaignSpec

GOOD = {
    "campaign_id": "promo1",
    "service_id": "12345",
    "audience": "audience",
    "message": "Hi {first_name}",
    "sender": "SHOP",
}

#: Attempts from the issue and beyond: each must be refused before any connection opens.
HOSTILE = [
    "audience) AS a; DELETE FROM sms_optouts; --",
    "SELECT * FROM audience; DELETE FROM sms_optouts",
    "DELETE FROM sms_optouts",
    "COPY sms_optouts TO '/tmp/stolen.csv'",
    "ATTACH '/tmp/other.duckdb' AS other",
    "SELECT content AS msisdn, 'x' AS idremote FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('/var/x.parquet')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM glob('/root/*')",
    "SELECT pg_read_file('/etc/passwd') AS msisdn",
    "SELECT lo_import('/etc/passwd')",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT current_setting('data_directory')",
    "WITH gone AS (DELETE FROM sms_optouts RETURNING *) SELECT * FROM gone",
    "SELECT * INTO stolen FROM audience",
    "SELECT * FROM audience FOR UPDATE",
    "INSERT INTO sms_optouts SELECT * FROM audience",
    "DROP TABLE sms_optouts",
    "SET enable_external_access = true",
    "PRAGMA database_list",
    "CREATE TABLE x AS SELECT 1",
    "SELECT * FROM generate_series(1, 10)",
    "SELECT * FROM dblink('host=evil', 'select 1') AS t(x int)",
    "",
    "   ;  ",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_select_is_refused_even_where_selects_are_allowed(text: str) -> None:
    with pytest.raises(InputError) as caught:
        audience_query(text, allow_select=True)
    assert caught.value.field == "audience"


@pytest.mark.parametrize("text", HOSTILE)
def test_a_request_with_hostile_sql_is_refused_by_default(text: str) -> None:
    with pytest.raises(InputError) as caught:
        CampaignSpec.from_mapping({**GOOD, "audience": text})
    assert caught.value.field == "audience"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT idremote, msisdn FROM audience WHERE active",
        "SELECT a.idremote, a.msisdn FROM crm.audience AS a JOIN crm.vip AS v ON a.id = v.id",
        (
            "WITH recent AS (SELECT * FROM orders WHERE day > DATE '2026-01-01') "
            "SELECT idremote, msisdn FROM recent"
        ),
        "SELECT idremote, msisdn FROM a UNION ALL SELECT idremote, msisdn FROM b",
        "SELECT CAST(id AS VARCHAR) AS idremote, lower(phone) AS msisdn FROM people;",
        "SELECT idremote, msisdn FROM audience -- a comment",
    ],
)
def test_a_plain_select_is_accepted_in_both_dialects(query: str) -> None:
    assert audience_query(query, allow_select=True) == query.strip().rstrip(";").strip()


def test_the_setting_is_off_by_default_and_read_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_SELECT_ENV, raising=False)
    assert not select_allowed()
    with pytest.raises(InputError, match="free SELECT is off"):
        CampaignSpec.from_mapping({**GOOD, "audience": "SELECT idremote, msisdn FROM audience"})
    monkeypatch.setenv(ALLOW_SELECT_ENV, "1")
    assert select_allowed()
    request = CampaignSpec.from_mapping({**GOOD, "audience": "SELECT * FROM audience"})
    assert request.audience == "SELECT * FROM audience"


def test_a_query_file_is_held_to_the_same_rule(tmp_path: Path) -> None:
    (tmp_path / "evil.sql").write_text("SELECT 1 AS x; DELETE FROM sms_optouts;\n")
    with pytest.raises(InputError) as caught:
        audience_query("evil.sql", sql_dir=tmp_path)
    assert caught.value.file == str(tmp_path / "evil.sql")
    with pytest.raises(InputError, match="must be a file of"):
        audience_query("../../../etc/x.sql", sql_dir=tmp_path)


def test_the_shipped_query_files_pass() -> None:
    assert "FROM audience" in audience_query("winback.sql")


def test_a_dialect_names_what_it_parsed() -> None:
    with pytest.raises(InputError, match=r"\(postgres\)"):
        check_select("SELECT 1; SELECT 2", "postgres")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_accepted_as_one_select_or_refused_with_a_field(text: str) -> None:
    try:
        query = audience_query(text, allow_select=True)
    except InputError as error:
        assert error.field == "audience" or error.file
        return
    import sqlglot

    for dialect in ("duckdb", "postgres"):
        (tree,) = sqlglot.parse(query, read=dialect)
        assert type(tree).__name__ in ("Select", "Union", "Intersect", "Except")


@pytest.mark.parametrize(("group_rows", "batch"), [(3, 5), (7, 5), (5, 5), (100, 5), (1, 4)])
def test_a_parquet_audience_is_read_whole_in_order_whatever_its_row_groups(
    tmp_path: Path, group_rows: int, batch: int
) -> None:
    """Read a run of row groups at a time (``iter_batches`` over the whole file keeps what
    it read): every row once, in order, no batch over the batch size, and tiny row groups
    still make full batches."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from smsdrop.audience_files import read_audience_tables

    rows = 23
    table = pa.table({"msisdn": [f"+336123456{i:02d}" for i in range(rows)],
                      "idremote": [f"C{i}" for i in range(rows)]})  # fmt: skip
    path = tmp_path / "audience.parquet"
    pq.write_table(table, path, row_group_size=group_rows)
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-rows // group_rows)
    batches = list(read_audience_tables(path, ["msisdn", "idremote"], batch))
    assert [r for b in batches for r in b.column("idremote").to_pylist()] == [
        f"C{i}" for i in range(rows)
    ]
    assert all(b.num_rows <= batch for b in batches)
    assert len(batches) <= 2 * -(-rows // batch)  # a run's rest makes one short batch at most
    if group_rows < batch:
        assert batches[0].num_rows == batch
