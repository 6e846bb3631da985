"""Where a campaign's audience comes from, and why that text is never run as it was given.

A campaign names its audience one of three ways:

* a table, ``audience`` or ``schema.audience`` (ASCII identifiers only; a name ending in
  ``.sql`` is a query file);
* a ``.sql`` file of ``include/sql/audience/`` (by name; no path may leave the folder);
* a free ``SELECT`` — only where the deployment turns it on
  (``SMSDROP_ALLOW_SELECT_AUDIENCE=1``; off by default: a DAG parameter is typed by whoever
  may trigger a run, not by whoever owns the warehouse).

A query (a file's or a free one) is parsed with a real SQL parser (sqlglot, in the
warehouse's dialect) and must be exactly one SELECT that reads tables: no second statement,
no data-modifying CTE, no ``SELECT … INTO``, no row locks, no table function (``read_csv``,
``glob``, ``generate_series``…) and none of the functions that reach outside the database
(:data:`FORBIDDEN_FUNCTIONS`). That check runs before any connection is opened; the query
then runs on a read-only connection (see docs/SECURITY.md), which is the defence that holds
even if the parser and the database ever disagree.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from smsdrop.errors import InputError
from smsdrop.warehouse.migrations import SQL_DIR

#: The setting that lets the ``audience`` parameter be a free SELECT.
ALLOW_SELECT_ENV: Final = "SMSDROP_ALLOW_SELECT_AUDIENCE"
#: Audience queries a run may name (``audience="winback.sql"``) live here.
AUDIENCE_SQL_DIR: Final = SQL_DIR / "audience"
#: The dialects of the warehouse engines (sqlglot's names).
DIALECTS: Final = ("duckdb", "postgres")

TABLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
#: A table a query may read: a plain identifier (a quoted string like ``'x.csv'`` is not).
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
#: Functions that read files, the network, settings or other databases (lower case,
#: full-match patterns). DuckDB's read-only, no-external-access connection refuses most of
#: them anyway; PostgreSQL's ``pg_read_file`` works in a READ ONLY transaction for a
#: superuser, hence the list.
FORBIDDEN_FUNCTIONS: Final = (
    r"pg_.*",
    r"lo_.*",
    r"dblink.*",
    r"read_.*",
    r".*_scan",
    r"glob",
    r"sniff_csv",
    r"parquet_.*",
    r"query(_table)?",
    r"set_config",
    r"current_setting",
    r"getenv",
    r"duckdb_.*",
    r"http_.*",
    r"copy_.*",
)
_FORBIDDEN: Final = re.compile("|".join(FORBIDDEN_FUNCTIONS))


def select_allowed() -> bool:
    """Whether this deployment lets ``audience`` be a free SELECT (off by default)."""
    return os.environ.get(ALLOW_SELECT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def audience_query(
    audience: str,
    *,
    dialect: str | None = None,
    sql_dir: Path = AUDIENCE_SQL_DIR,
    allow_select: bool | None = None,
) -> str:
    """The SELECT behind ``audience`` (a table, a ``.sql`` file of ``sql_dir``, or a free
    SELECT where allowed), checked by :func:`check_select` in ``dialect`` (every engine's
    when None). Raises :class:`InputError` on the field ``audience``."""
    text = audience.strip()
    if not text:
        raise InputError("expected a table name or a .sql file, got nothing", field="audience")
    if text.lower().endswith(".sql"):
        path = (sql_dir / text).resolve()
        if sql_dir.resolve() not in path.parents:
            raise InputError(f"must be a file of {sql_dir}", field="audience")
        if not path.is_file():
            found = ", ".join(sorted(p.name for p in sql_dir.glob("*.sql"))) or "none"
            raise InputError(f"no such query file (there are: {found})", file=str(path))
        try:
            query = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read the query: {error}", file=str(path)) from None
        try:
            return check_select(query, dialect)
        except InputError as error:
            raise InputError(error.reason, file=str(path)) from None
    if TABLE_NAME.fullmatch(text):
        return check_select(f"SELECT * FROM {text}", dialect)
    if not (select_allowed() if allow_select is None else allow_select):
        raise InputError(
            "must be a table (audience, schema.audience) or a .sql file of "
            f"include/sql/audience/; a free SELECT is off here (set {ALLOW_SELECT_ENV}=1 "
            "where the deployment allows it)",
            field="audience",
        )
    return check_select(text, dialect)


def check_select(sql: str, dialect: str | None = None) -> str:
    """``sql`` without its trailing ``;`` when it is exactly one SELECT that only reads
    tables, in ``dialect`` (in every engine's dialect when None); else :class:`InputError`."""
    import sqlglot
    from sqlglot import exp

    text = sql.strip().rstrip(";").strip()
    for name in (dialect,) if dialect else DIALECTS:
        try:
            statements = [s for s in sqlglot.parse(text, read=name) if s is not None]
        except sqlglot.errors.SqlglotError as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise InputError(f"not a valid {name} SELECT: {first}", field="audience") from None
        problem = _problem(statements, exp)
        if problem:
            raise InputError(f"{problem} ({name})", field="audience")
    return text


def _problem(statements: list, exp: object) -> str | None:
    """Why parsed ``statements`` are not one read-only SELECT, or None."""
    e = exp  # sqlglot.exp, imported by the caller (a heavy import kept off the module)
    if len(statements) != 1:
        return f"must be exactly one SELECT statement, got {len(statements)} statements"
    (tree,) = statements
    if not isinstance(tree, e.Select | e.SetOperation):
        return f"must be a SELECT, got {type(tree).__name__.upper()}"
    writes = (e.Insert, e.Update, e.Delete, e.Merge, e.DDL, e.Copy, e.Command, e.Set)
    for node in tree.walk():
        if isinstance(node, writes):
            return f"must only read: it holds a {type(node).__name__.upper()}"
        if isinstance(node, e.Into):
            return "must only read: SELECT … INTO creates a table"
        if isinstance(node, e.Lock):
            return "must only read: it locks rows (FOR UPDATE/SHARE)"
        if isinstance(node, e.Table):
            if not isinstance(node.this, e.Identifier):
                return f"may only read tables, not {node.this.sql()[:40]}"
            parts = [node.name, node.db, node.catalog]
            if not all(_IDENTIFIER.fullmatch(p) for p in parts if p):
                return f"may only read tables named with letters, digits and _: {node.sql()!r}"
        if isinstance(node, e.Func):
            name = node.name if isinstance(node, e.Anonymous) else node.sql_name()
            if _FORBIDDEN.fullmatch(name.lower()):
                return f"may not call {name.lower()}()"
    return None
