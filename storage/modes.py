"""Plain PostgreSQL or TimescaleDB: which one a database gets, decided once at migration time."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import psycopg


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


def choose_mode(available: bool, installed: bool, preloaded: bool) -> ModeChoice:
    """TimescaleDB when its extension is installed in the database already, or is available
    and preloaded (``shared_preload_libraries``), as ``CREATE EXTENSION`` then succeeds."""
    if installed:
        return ModeChoice(StorageMode.TIMESCALE, "the timescaledb extension is installed")
    if available and preloaded:
        return ModeChoice(
            StorageMode.TIMESCALE, "the timescaledb extension is available and preloaded"
        )
    if available:
        return ModeChoice(
            StorageMode.PLAIN,
            "the timescaledb extension is available but not in shared_preload_libraries",
        )
    return ModeChoice(StorageMode.PLAIN, "the timescaledb extension is not available")


def detect_mode(conn: psycopg.Connection[tuple[object, ...]]) -> ModeChoice:
    """Look at ``pg_available_extensions``, ``pg_extension`` and the preloaded libraries."""
    row = conn.execute(
        """
        SELECT
            EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
            EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),
            current_setting('shared_preload_libraries')
        """
    ).fetchone()
    assert row is not None
    available, installed, preload = row
    preloaded = "timescaledb" in [lib.strip() for lib in str(preload).split(",")]
    return choose_mode(bool(available), bool(installed), preloaded)
