"""Plain PostgreSQL or TimescaleDB: which one a database gets, decided once at migration time."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import psycopg

TIMESCALEDB: Final = "timescaledb"
"""The extension's name, which is also the name of the library to preload."""
HOW_TO_ENABLE_TIMESCALEDB: Final = (
    "to use TimescaleDB, add timescaledb to shared_preload_libraries in postgresql.conf,"
    " restart the server and migrate a new database"
)


class StorageMode(enum.StrEnum):
    """How the time-series tables are laid out; both give the same tables and view names."""

    PLAIN = "plain"
    """Ordinary tables with b-tree and BRIN indexes; the roll-ups are plain views."""
    TIMESCALE = "timescale"
    """Hypertables, compression and retention policies, continuous aggregates."""


@dataclass(frozen=True, slots=True)
class ModeChoice:
    mode: StorageMode
    reason: str


def preloads_timescaledb(shared_preload_libraries: str) -> bool:
    """Whether a ``shared_preload_libraries`` value (as ``current_setting`` gives it) names
    TimescaleDB's library: ``timescaledb``, quoted, as a path (``$libdir/timescaledb``) or with
    its file suffix."""
    for entry in shared_preload_libraries.split(","):
        name = entry.strip().strip('"').rsplit("/", 1)[-1]
        if name.removesuffix(".so").removesuffix(".dylib") == TIMESCALEDB:
            return True
    return False


def choose_mode(available: bool, installed: bool, shared_preload_libraries: str) -> ModeChoice:
    """The mode a new database gets, from what the server says: whether ``timescaledb`` is in
    ``pg_available_extensions`` (its files are on the server) and in ``pg_extension`` (installed
    in the database), and the ``shared_preload_libraries`` setting.

    TimescaleDB when the extension is installed already, or is available and preloaded, as
    ``CREATE EXTENSION`` then succeeds (without preloading, it ends the session).
    """
    if installed:
        return ModeChoice(StorageMode.TIMESCALE, "the timescaledb extension is installed")
    if not available:
        return ModeChoice(StorageMode.PLAIN, "the timescaledb extension is not available")
    if preloads_timescaledb(shared_preload_libraries):
        return ModeChoice(
            StorageMode.TIMESCALE, "the timescaledb extension is available and preloaded"
        )
    return ModeChoice(
        StorageMode.PLAIN,
        "the timescaledb extension is available but not preloaded: " + HOW_TO_ENABLE_TIMESCALEDB,
    )


def detect_mode(conn: psycopg.Connection[tuple[object, ...]]) -> ModeChoice:
    """Ask the server what :func:`choose_mode` decides on."""
    row = conn.execute(
        """
        SELECT
            EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = %(name)s),
            EXISTS (SELECT 1 FROM pg_extension WHERE extname = %(name)s),
            current_setting('shared_preload_libraries')
        """,
        {"name": TIMESCALEDB},
    ).fetchone()
    assert row is not None
    available, installed, preload = row
    return choose_mode(bool(available), bool(installed), str(preload))
