"""SQLite connections and the migration runner.

One writer per database (WAL, ``synchronous=NORMAL``, ``BEGIN IMMEDIATE``); readers open read-only
connections. Migrations are the numbered files ``migrations/NNNN_name.sql``, each applied in one
transaction together with its row in the ``migrations`` table.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from flownet.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def connect(path: Path | str, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit)."""
    if readonly:
        uri = f"file:{Path(path).resolve()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.row_factory = sqlite3.Row
    return conn


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME_RE.match(path.name)
        if not match:
            raise ConfigError(f"migration file {path.name!r} is not named NNNN_name.sql")
        found.append((int(match.group(1)), match.group(2), path))
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ConfigError(f"migrations in {directory} must be numbered 1, 2, 3, ... without gaps (found {versions})")
    return found


def migrate(conn: sqlite3.Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply every migration not yet recorded; returns the versions applied now."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM migrations")}
    applied = []
    for version, name, path in migration_files(directory):
        if version in done:
            continue
        sql = path.read_text()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?, ?)", (version, name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    statements, buffer = [], ""
    for char in sql:
        buffer += char
        if char == ";" and sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    rest = "\n".join(line for line in buffer.splitlines() if not line.strip().startswith("--")).strip()
    if rest:
        raise ConfigError(f"incomplete SQL statement at the end of a migration: {rest[:80]!r}")
    return statements
