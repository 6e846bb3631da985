"""Migrations: numbered DDL applied once, on both engines."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from smsdrop.warehouse.migrations import SQL_DIR, MigrationError, migrations

TABLES = {
    "schema_migrations",
    "sms_ack_statuses",
    "sms_optouts",
    "sms_campaigns",
    "sms_campaign_files",
    "sms_rejected_rows",
    "sms_deliveries",
    "sms_replies",
    "sms_report_offsets",
    "sms_report_quarantine",
    "sms_optout_loads",
    "sms_send_history",
    "sms_campaign_prices",
}
VIEWS = {
    "sms_delivery_outcomes",
    "sms_delivery_flags",
    "sms_campaign_stats",
    "sms_campaign_stop_numbers",
    "sms_campaign_stats_by_operator",
    "sms_campaign_stats_by_country",
    "sms_campaign_sent_cost",
}


def _relations(wh) -> set[str]:
    frame = wh.query_frame(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    )
    return set(frame["table_name"])


def test_dialects_share_the_ddl_where_they_agree() -> None:
    duck = [m.name for m in migrations("duckdb")]
    pg = [m.name for m in migrations("postgres")]
    shared = [
        "004_network.sql",
        "005_report_quarantine.sql",
        "006_delivery_flags.sql",
        "007_send_history.sql",
        "008_campaign_costs.sql",
    ]
    assert duck == ["001_tables.sql", "002_views.sql", "003_indexes.duckdb.sql", *shared]
    assert pg == ["001_tables.sql", "002_views.sql", "003_indexes.postgres.sql", *shared]


def test_migrate_creates_everything_once(open_warehouse) -> None:
    with open_warehouse() as wh:
        assert wh.migrate() == [1, 2, 3, 4, 5, 6, 7, 8]
        assert _relations(wh) == TABLES | VIEWS
        statuses = wh.query_frame("SELECT count(*) AS n FROM sms_ack_statuses")["n"][0]
    with open_warehouse() as wh:  # a second process, later
        assert wh.migrate() == []
        assert [v for v, _ in wh.applied_migrations()] == [1, 2, 3, 4, 5, 6, 7, 8]
        assert _relations(wh) == TABLES | VIEWS
        assert wh.query_frame("SELECT count(*) AS n FROM sms_ack_statuses")["n"][0] == statuses


def test_new_migration_applies_alone_and_edited_one_is_refused(open_warehouse, tmp_path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    with open_warehouse(sql_dir=sql_dir) as wh:
        assert wh.migrate() == [1, 2, 3, 4, 5, 6, 7, 8]
        (sql_dir / "099_extra.sql").write_text("CREATE TABLE sms_extra (x INTEGER);\n")
        assert wh.migrate() == [99]
        assert wh.migrate() == []
        (sql_dir / "001_tables.sql").write_text("-- edited\n")
        with pytest.raises(MigrationError, match="001_tables.sql changed"):
            wh.migrate()


def test_a_failing_migration_leaves_no_trace(open_warehouse, tmp_path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "099_broken.sql").write_text(
        "CREATE TABLE sms_half (x INTEGER);\nTHIS IS NOT SQL;\n"
    )
    with open_warehouse(sql_dir=sql_dir) as wh:
        with pytest.raises(Exception):  # noqa: B017 - each driver has its own error class
            wh.migrate()
        assert [v for v, _ in wh.applied_migrations()] == [1, 2, 3, 4, 5, 6, 7, 8]
        assert "sms_half" not in _relations(wh)


def test_network_migration_upgrades_a_warehouse_with_data(open_warehouse, tmp_path) -> None:
    """004 on a warehouse at 003 that holds ACK lines: the views keep their figures, the
    by-operator view groups by network (NULL for the lines loaded before it)."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    for later in sql_dir.glob("00[4-9]_*.sql"):  # the warehouse as it was at 003
        later.unlink()
    with open_warehouse(sql_dir=sql_dir) as wh:
        assert wh.migrate() == [1, 2, 3]
        with wh.transaction():
            for msisdn, status in (("+33612345601", 1), ("+33612345602", 3)):
                wh._execute(
                    "INSERT INTO sms_deliveries (file, campaign_id, msisdn, idstatus, segments,"
                    " ackoperator) VALUES ('ACK-1.csv', 'old', %s, %s, 1, %s)",
                    (msisdn, status, f"op-{msisdn}"),
                )
        before = wh.campaign_stats("old")
        shutil.copy(SQL_DIR / "004_network.sql", sql_dir)
        assert wh.migrate() == [4]
        assert wh.campaign_stats("old") == before
        by_operator = wh.query_frame("SELECT * FROM sms_campaign_stats_by_operator")
        assert list(by_operator.columns[:3]) == ["campaign_id", "network", "acked"]
        assert len(by_operator) == 1 and pd.isna(by_operator["network"][0])
        assert (by_operator["acked"][0], by_operator["delivered"][0]) == (2, 1)
        outcomes = wh.query_frame("SELECT * FROM sms_delivery_outcomes")
        assert list(outcomes.columns[-3:]) == ["outcome", "billed", "network"]


def test_delivery_flags_migration_keeps_every_figure(open_warehouse, tmp_path) -> None:
    """006 on a warehouse at 005 holding a campaign: the three stats views (the two
    breakdowns now add up sms_delivery_flags) give the same rows, columns and types."""
    from reportdata import ACK, SEND, SMSMO, ack_frame, replies_frame

    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    for later in sql_dir.glob("00[6-9]_*.sql"):  # the warehouse as it was at 005
        later.unlink()
    views = [
        "sms_campaign_stats",
        "sms_campaign_stats_by_operator",
        "sms_campaign_stats_by_country",
    ]

    def figures(wh) -> dict[str, pd.DataFrame]:
        return {view: wh.query_frame(f"SELECT * FROM {view} ORDER BY 1, 2") for view in views}

    with open_warehouse(sql_dir=sql_dir) as wh:
        assert wh.migrate() == [1, 2, 3, 4, 5]
        wh.record_campaign("promo", "12345", status="submitted")
        wh.record_file_state(SEND, "done", campaign_id="promo", row_count=10)
        wh.load_acks(ack_frame(), ACK)
        wh.load_replies(replies_frame(), SMSMO)
        before = figures(wh)
        shutil.copy(SQL_DIR / "006_delivery_flags.sql", sql_dir)
        assert wh.migrate() == [6]
        after = figures(wh)
        for view in views:  # NULLs compare equal here, and the dtypes are checked too
            pd.testing.assert_frame_equal(after[view], before[view])
        assert wh.campaign_stats("promo")["acked"] == 8
