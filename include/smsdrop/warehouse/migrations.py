"""Numbered DDL files under ``include/sql/`` and which of them a warehouse has applied.

A migration is ``NNN_name.sql`` (both engines) or ``NNN_name.<dialect>.sql`` (``duckdb``,
``postgres``) when the dialects must differ; for one version, the dialect's own file wins
over the common one. Each migration runs in its own transaction together with its row in
``schema_migrations`` (version, name, sha256 of the text, applied_at), so applying twice
changes nothing and a failed migration leaves no trace. A migration already applied whose
file has changed since is an error: released DDL is never edited, a new number is added.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["DIALECTS", "SQL_DIR", "Migration", "MigrationError", "migrations"]

#: The DDL directory of a source checkout (``include/sql``), next to the package.
SQL_DIR: Final = Path(__file__).resolve().parents[2] / "sql"
DIALECTS: Final = ("duckdb", "postgres")
_NAME: Final = re.compile(
    r"(?P<version>[0-9]{3})_(?P<name>[a-z0-9_]+)(?:\.(?P<dialect>[a-z]+))?\.sql"
)

#: DDL of the bookkeeping table itself (the same in both engines).
SCHEMA_MIGRATIONS_DDL: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""


class MigrationError(RuntimeError):
    """The DDL files or the recorded migrations are inconsistent."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def migrations(dialect: str, directory: Path = SQL_DIR) -> list[Migration]:
    """The migrations for ``dialect``, in version order."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}")
    common: dict[int, Path] = {}
    own: dict[int, Path] = {}
    for path in sorted(directory.glob("[0-9][0-9][0-9]_*.sql")):
        m = _NAME.fullmatch(path.name)
        if m is None:
            raise MigrationError(f"{path.name}: expected NNN_name.sql or NNN_name.<dialect>.sql")
        version, file_dialect = int(m["version"]), m["dialect"]
        if file_dialect is not None and file_dialect not in DIALECTS:
            raise MigrationError(f"{path.name}: unknown dialect {file_dialect!r}")
        if file_dialect is None:
            if version in common:
                raise MigrationError(f"two migrations numbered {version:03d}: {path.name}")
            common[version] = path
        elif file_dialect == dialect:
            own[version] = path
    chosen = {**common, **own}
    return [
        Migration(v, chosen[v].name, chosen[v].read_text(encoding="utf-8")) for v in sorted(chosen)
    ]


def pending(applied: dict[int, str], available: list[Migration]) -> list[Migration]:
    """The migrations not applied yet; raises when an applied one has changed."""
    for m in available:
        if m.version in applied and applied[m.version] != m.sha256:
            raise MigrationError(
                f"migration {m.name} changed after it was applied: add a new numbered file"
            )
    return [m for m in available if m.version not in applied]
