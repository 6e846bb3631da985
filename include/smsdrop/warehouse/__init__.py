"""smsdrop's tables in the data warehouse: DuckDB (embedded, default) or PostgreSQL.

One interface, :class:`Warehouse`, two engines: :class:`DuckDBWarehouse` (a file) and
:class:`PostgresWarehouse` (psycopg 3). DDL is under ``include/sql/`` (numbered, applied
once by :meth:`Warehouse.migrate`); tables and views are documented in docs/WAREHOUSE.md.
No Airflow here: the Airflow hook builds one of these from its connection.
"""

from __future__ import annotations

from smsdrop.warehouse.base import FILE_STATES, LoadResult, Warehouse
from smsdrop.warehouse.duckdb_engine import DuckDBWarehouse
from smsdrop.warehouse.optout import OPTOUT_KEYWORDS, optout_keyword
from smsdrop.warehouse.postgres_engine import PostgresWarehouse

__all__ = [
    "FILE_STATES",
    "OPTOUT_KEYWORDS",
    "DuckDBWarehouse",
    "LoadResult",
    "PostgresWarehouse",
    "Warehouse",
    "optout_keyword",
]
