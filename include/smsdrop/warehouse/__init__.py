"""smsdrop's tables in the data warehouse: DuckDB (embedded, default) or PostgreSQL.

One interface, :class:`Warehouse`, two engines: :class:`DuckDBWarehouse` (a file) and
:class:`PostgresWarehouse` (psycopg 3). DDL is under ``include/sql/`` (numbered, applied
once by :meth:`Warehouse.migrate`); tables and views are documented in docs/WAREHOUSE.md.
No Airflow here: the Airflow hook builds one of these from its connection.

The names are loaded on first use (PEP 562): importing a submodule such as
``smsdrop.warehouse.migrations`` (the CLI's ``prepare`` needs only its paths) must not
load duckdb and psycopg, ~0.18 s of a command's start-up.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smsdrop.warehouse.base import FILE_STATES, LoadResult, Warehouse
    from smsdrop.warehouse.duckdb_engine import DuckDBWarehouse
    from smsdrop.warehouse.optout import OPTOUT_KEYWORDS, optout_keyword
    from smsdrop.warehouse.postgres_engine import PostgresWarehouse

#: Each public name and the submodule that defines it.
_HOMES = {
    "FILE_STATES": "base",
    "LoadResult": "base",
    "Warehouse": "base",
    "DuckDBWarehouse": "duckdb_engine",
    "OPTOUT_KEYWORDS": "optout",
    "optout_keyword": "optout",
    "PostgresWarehouse": "postgres_engine",
}

__all__ = [
    "FILE_STATES",
    "OPTOUT_KEYWORDS",
    "DuckDBWarehouse",
    "LoadResult",
    "PostgresWarehouse",
    "Warehouse",
    "optout_keyword",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
