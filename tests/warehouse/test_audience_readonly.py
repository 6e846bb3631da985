"""The audience query runs on a read-only connection: even SQL that got past the parser
changes nothing, reads no file and leaves every sms_* table as it was (both engines)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from smsdrop.campaign import AUDIENCE_FILE, extract_audience
from smsdrop.errors import InputError
from smsdrop.spec import CampaignSpec

#: Statements the read-only connection itself must refuse (the parser is bypassed here).
WRITES = [
    "DELETE FROM sms_optouts",
    "UPDATE sms_optouts SET msisdn = '+1'",
    "INSERT INTO sms_optouts (msisdn, source) VALUES ('+33600000000', 'x')",
    "DROP TABLE sms_optouts",
    "CREATE TABLE stolen AS SELECT * FROM sms_optouts",
]
#: What DuckDB's sandbox refuses: files, other databases, extensions, settings.
DUCKDB_ESCAPES = [
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_csv('{secret}')",
    "COPY sms_optouts TO '{out}'",
    "ATTACH '{out}.duckdb' AS other",
    "SET enable_external_access = true",
    "INSTALL httpfs",
    "LOAD httpfs",
]


def _tables(warehouse) -> dict[str, list]:
    _, rows = warehouse._query(
        "SELECT table_name FROM information_schema.tables WHERE left(table_name, 4) = 'sms_' "
        "AND table_type = 'BASE TABLE' AND table_schema = current_schema() ORDER BY table_name"
    )
    return {r[0]: sorted(map(str, warehouse._query(f"SELECT * FROM {r[0]}")[1])) for r in rows}


@pytest.fixture
def seeded(warehouse, open_warehouse):
    warehouse.upsert_optouts(pd.DataFrame({"msisdn": ["+33612345678"]}), "import")
    warehouse._script(
        "CREATE TABLE audience AS SELECT 'c1' AS idremote, '+33611111111' AS msisdn, "
        "'Ann' AS first_name"
    )
    before = _tables(warehouse)
    warehouse.close()
    return before


def test_writes_fail_on_the_read_only_connection(seeded, open_warehouse) -> None:
    with open_warehouse(read_only=True) as reader:
        assert reader.read_only
        for sql in WRITES:
            with pytest.raises(Exception) as caught:
                reader._execute(sql)
            assert "read-only" in str(caught.value).lower().replace("read only", "read-only")
        for sql in WRITES:  # through the extraction path too (COPY (…) / Arrow stream)
            with pytest.raises(Exception):  # noqa: B017 - the engine's own error
                list(reader.extract(f"WITH x AS ({sql} RETURNING *) SELECT * FROM x", 10))
    with open_warehouse() as after:
        assert _tables(after) == seeded


def test_duckdb_read_only_reaches_no_file(seeded, open_warehouse, engine, tmp_path: Path) -> None:
    if engine[0] != "duckdb":
        pytest.skip("DuckDB's sandbox")
    secret = tmp_path / "secret.txt"
    secret.write_text("+33699999999\n")
    out = tmp_path / "stolen.csv"
    with open_warehouse(read_only=True) as reader:
        for sql in DUCKDB_ESCAPES:
            with pytest.raises(Exception) as caught:
                reader._execute(sql.format(secret=secret, out=out))
            assert any(
                word in str(caught.value).lower()
                for word in ("disabled", "permission", "cannot change", "read-only", "read only")
            ), str(caught.value)
    assert not out.exists() and not Path(f"{out}.duckdb").exists()
    with open_warehouse() as after:
        assert _tables(after) == seeded


def test_extract_audience_needs_a_read_only_warehouse(seeded, open_warehouse, tmp_path) -> None:
    request = CampaignSpec.from_mapping(
        {
            "campaign_id": "ro1",
            "service_id": "12345",
            "audience": "audience",
            "message": "Hi {first_name}",
            "sender": "SHOP",
        }
    )
    with open_warehouse() as writer, pytest.raises(ValueError, match="read-only"):
        extract_audience(writer, request, tmp_path / AUDIENCE_FILE)
    with open_warehouse(read_only=True) as reader:
        assert extract_audience(reader, request, tmp_path / AUDIENCE_FILE) == 1
    with open_warehouse(read_only=True) as reader, pytest.raises(InputError):
        hostile = CampaignSpec.from_mapping({**request.to_dict(), "audience": "sms_optouts"})
        extract_audience(reader, hostile, tmp_path / "other.parquet")  # lacks the columns
    with open_warehouse() as after:
        assert _tables(after) == seeded
