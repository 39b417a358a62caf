"""Online backup of the SQLite database, and the documented procedure for PostgreSQL.

SQLite: ``sqlite3.Connection.backup`` copies the database while the services keep running. It
copies in one step, inside one read transaction: the catalog runs SQLite in WAL mode, where a
reader never blocks writers, so writes go on during the copy and the copy is one consistent
snapshot, holding exactly the transactions committed when it began (a copy in several steps
would restart each time a writer got in between, and might never finish under load). The copy
is written beside the destination and renamed into place, so a crash never leaves a
half-written backup under the final name.

PostgreSQL has its own tools, which this module names but does not run.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

PG_DUMP = "pg_dump --format=custom --file=pilotmatch.dump 'postgresql://USER@HOST:5432/DB'"
PG_RESTORE = (
    "createdb NEWDB && pg_restore --no-owner --dbname='postgresql://USER@HOST:5432/NEWDB' "
    "pilotmatch.dump"
)


class BackupError(Exception):
    """The backup cannot be made; the message says why and what to do instead."""


@dataclass(frozen=True)
class BackupResult:
    source: Path
    destination: Path
    size_bytes: int


def sqlite_path(database_url: str) -> Path:
    """The file of a ``sqlite:///…`` URL; ``BackupError`` for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        raise BackupError(
            "pilotmatch backup copies SQLite databases only; for PostgreSQL use its own tools: "
            f"`{PG_DUMP}`, and to restore `{PG_RESTORE}` (see README, Backups)."
        )
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise BackupError(f"cannot back up {url.render_as_string()}: not a SQLite database file")
    return Path(url.database)


def backup_sqlite(database_url: str, destination: Path) -> BackupResult:
    """Copy the live SQLite database at ``database_url`` to ``destination`` (a new file)."""
    source = sqlite_path(database_url)
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    destination = Path(destination)
    if destination.exists():
        raise BackupError(f"{destination} exists; choose a new file name")
    if destination.resolve() == source.resolve():
        raise BackupError("the backup must not be the database itself")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: all at once, one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(partial, destination)
    return BackupResult(source, destination, destination.stat().st_size)
