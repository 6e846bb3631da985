"""extract(): Arrow batches of exactly batch_rows, types kept, memory bounded by the batch."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest


def _make_table(wh, rows: int) -> None:
    wh._script(
        "CREATE TABLE audience AS SELECT CAST(i AS BIGINT) AS id,"
        " 'name' || CAST(i AS TEXT) AS name,"
        " CAST(i % 2 = 0 AS BOOLEAN) AS even"
        f" FROM generate_series(1, {rows}) AS g(i)"
    )


def test_batches_have_the_requested_size(warehouse) -> None:
    _make_table(warehouse, 2500)
    batches = list(warehouse.extract("audience", 1000))
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    table = pa.Table.from_batches(batches)
    assert table.column_names == ["id", "name", "even"]
    assert table.schema.field("id").type == pa.int64()
    assert pa.types.is_boolean(table.schema.field("even").type)
    assert table["id"].to_pylist() == list(range(1, 2501))
    assert table["name"][0].as_py() == "name1"


def test_a_select_with_types_nulls_and_empty_strings(warehouse) -> None:
    sql = (
        "SELECT 1 AS n, CAST(NULL AS TEXT) AS missing, '' AS empty, 'NULL' AS literal,"
        " 'a;b\"c' || chr(10) || 'd' AS awkward,"
        " CAST('2026-12-01 09:00:00+01:00' AS TIMESTAMPTZ) AS at,"
        " CAST('2026-12-01' AS DATE) AS day;"
    )
    (batch,) = list(warehouse.extract(sql, 10))
    row = batch.to_pylist()[0]
    assert row["missing"] is None
    assert row["empty"] == ""
    assert row["literal"] == "NULL"
    assert row["awkward"] == 'a;b"c\nd'
    assert row["at"] == dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    assert row["day"] == dt.date(2026, 12, 1)


def test_an_empty_result_gives_no_batch(warehouse) -> None:
    _make_table(warehouse, 10)
    assert list(warehouse.extract("SELECT * FROM audience WHERE id < 0", 100)) == []


def test_bad_arguments(warehouse) -> None:
    with pytest.raises(ValueError):
        list(warehouse.extract("audience", 0))
    with pytest.raises(ValueError):
        list(warehouse.extract("  ", 10))


def test_a_million_rows_stream_in_bounded_memory(warehouse) -> None:
    rows, batch_rows = 1_000_000, 50_000
    _make_table(warehouse, rows)
    baseline = pa.total_allocated_bytes()
    peak = 0
    sizes = []
    total = 0
    for batch in warehouse.extract("audience", batch_rows):
        sizes.append(batch.num_rows)
        total += batch.column(0).to_numpy().sum()
        peak = max(peak, pa.total_allocated_bytes() - baseline)
        del batch
    assert sizes == [batch_rows] * (rows // batch_rows)
    assert total == rows * (rows + 1) // 2
    # The whole result is ~30 MB in Arrow (int64 + ~11-byte strings + bool); what the
    # Arrow pool holds at any time stays within a few batches (~1.5 MB each).
    assert peak < 12 * 1024 * 1024, peak
