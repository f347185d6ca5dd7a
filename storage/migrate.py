"""Apply the numbered migrations: safe to re-run, and to run from two processes at once.

``migrate(url)`` takes a PostgreSQL advisory lock (so a second migrator waits, then finds
nothing to do), creates the ``schema_migrations`` table if needed, and applies each missing
migration in a transaction of its own together with its row in that table. The storage mode
(plain or TimescaleDB) is detected at the first migration and recorded with every version; a
database keeps the mode it started with.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from storage.migrations import Migration, migrations
from storage.modes import TIMESCALEDB, ModeChoice, StorageMode, detect_mode

MIGRATION_LOCK: Final = 0x6D64705F6D696772
"""The advisory lock key ("mdp_migr") that serialises migrators of one database."""

_CREATE_VERSIONS: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    mode       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

_EXTENSION_ON_PATH: Final = f"""
SELECT set_config(
    'search_path',
    concat_ws(', ', nullif(current_setting('search_path'), ''), quote_ident(n.nspname)),
    true
)
FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
WHERE e.extname = '{TIMESCALEDB}'
"""
"""Puts the schema of an installed ``timescaledb`` extension last on the ``search_path`` of
the migration's transaction, so that the migrations call its functions unqualified wherever
it is installed (say ``public``, when the URL sets ``search_path`` to the application's
schema). Where it is not installed yet, ``CREATE EXTENSION`` puts it in the path's first
schema."""

Connection = psycopg.Connection[Any]


class MigrationError(RuntimeError):
    """The database's schema cannot be brought to this code's version (the message says why)."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    """The schema version a database is at (0: never migrated) and its storage mode."""

    version: int
    mode: StorageMode | None


@dataclass(frozen=True, slots=True)
class MigrationReport:
    version: int
    mode: StorageMode
    reason: str
    """Why this mode: detected how, or recorded at the first migration."""
    applied: tuple[int, ...]
    """The versions applied by this run (empty when the schema was up to date)."""


def latest_version() -> int:
    """The schema version this code writes and reads."""
    return len(migrations(StorageMode.PLAIN))


def migrate(target: str | Connection, mode: StorageMode | None = None) -> MigrationReport:
    """Bring the database at ``target`` (a URL or an idle connection) to :func:`latest_version`.

    ``mode`` forces a storage mode on a new database (default: detected); on a database that
    has one already, asking for the other is an error.
    """
    if isinstance(target, str):
        with psycopg.connect(target, autocommit=True) as conn:
            return _migrate(conn, mode)
    was_autocommit = target.autocommit
    target.autocommit = True
    try:
        return _migrate(target, mode)
    finally:
        if not target.closed:  # a migration that lost the connection has its error raised
            target.autocommit = was_autocommit


async def migrate_async(url: str, mode: StorageMode | None = None) -> MigrationReport:
    """:func:`migrate` in a worker thread, for asyncio programs."""
    return await asyncio.to_thread(migrate, url, mode)


def schema_state(conn: Connection) -> SchemaState:
    """Version and mode of the database ``conn`` is connected to."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return SchemaState(0, None)
    row = conn.execute(
        "SELECT max(version), (array_agg(mode ORDER BY version))[1] FROM schema_migrations"
    ).fetchone()
    if row is None or row[0] is None:
        return SchemaState(0, None)
    return SchemaState(int(row[0]), StorageMode(row[1]))


def _migrate(conn: Connection, wanted: StorageMode | None) -> MigrationReport:
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        conn.execute(_CREATE_VERSIONS)
        applied = _applied(conn)
        choice = _choose(conn, applied, wanted)
        plan = migrations(choice.mode)
        _check_history(applied, plan, choice.mode)
        done = []
        for migration in plan:
            if migration.version not in applied:
                _apply(conn, migration, choice.mode)
                done.append(migration.version)
        return MigrationReport(len(plan), choice.mode, choice.reason, tuple(done))
    finally:
        if not conn.closed:  # else the session, and its lock, ended with the connection
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def _applied(conn: Connection) -> dict[int, tuple[str, StorageMode]]:
    rows = conn.execute("SELECT version, checksum, mode FROM schema_migrations").fetchall()
    return {int(v): (str(checksum), StorageMode(mode)) for v, checksum, mode in rows}


def _choose(
    conn: Connection, applied: dict[int, tuple[str, StorageMode]], wanted: StorageMode | None
) -> ModeChoice:
    if applied:
        recorded = applied[min(applied)][1]
        if wanted is not None and wanted != recorded:
            raise MigrationError(
                f"this database was set up in {recorded} mode; it cannot be migrated in"
                f" {wanted} mode (that would need its data moved to a new database)"
            )
        return ModeChoice(recorded, f"{recorded} mode, recorded at the first migration")
    detected = detect_mode(conn)
    if wanted is StorageMode.TIMESCALE and detected.mode is not StorageMode.TIMESCALE:
        raise MigrationError(f"timescale mode was asked for, but {detected.reason}")
    if wanted is not None:
        return ModeChoice(wanted, f"{wanted} mode, as asked")
    return detected


def _check_history(
    applied: dict[int, tuple[str, StorageMode]], plan: list[Migration], mode: StorageMode
) -> None:
    newest = len(plan)
    if applied and max(applied) > newest:
        raise MigrationError(
            f"the database is at schema version {max(applied)}, newer than this code's"
            f" {newest}: upgrade ganntec-mdp"
        )
    for migration in plan:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded[0] != migration.checksum:
            raise MigrationError(
                f"migration {migration.version} ({migration.name}, {mode} mode) was changed"
                " after this database applied it; released migrations must not change"
            )


def _apply(conn: Connection, migration: Migration, mode: StorageMode) -> None:
    try:
        with conn.transaction():
            conn.execute(_EXTENSION_ON_PATH)
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, mode, checksum)"
                " VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, mode.value, migration.checksum),
            )
    except psycopg.Error as exc:
        raise MigrationError(
            f"migration {migration.version} ({migration.name}, {mode} mode) failed and was"
            f" rolled back: {exc.diag.message_primary or exc}"
        ) from exc
