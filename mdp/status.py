"""The live status line of ``mdp up``: what came in, what went out, what is still on its way."""

from __future__ import annotations

from ingest.publisher import FeedStats
from ingest.venues.session import FeedCounters
from storage.writer import WriterStats
from streams.engine_runner import EngineStats


def status_line(
    feed: FeedStats,
    engine: EngineStats,
    writer: WriterStats,
    venue: FeedCounters | None = None,
    *,
    paused: bool = False,
) -> str:
    """One line: ticks in, candles out, rejects, stored rows, the backlog (lag) in ticks, the
    feed gaps a live venue reported (when there were any) and its connection (``venue``);
    while the database is away or the feed waits for storage (``paused``), that
    (:func:`storage_state`)."""
    rejects = feed.bad_rows + engine.rejected + engine.undecodable
    engine_lag = max(0, feed.ticks - engine.ticks)
    gaps = f" | feed gaps {feed.gaps:,}" if feed.gaps else ""
    link = "" if venue is None else f" | venue {connection(venue)}"
    done = " | feed finished" if feed.finished else ""
    storage = storage_state(writer, paused)
    storage = f" | {storage}" if storage else ""
    return (
        f"ticks in {feed.ticks:,} | candles out {engine.candles:,} | rejects {rejects:,}"
        f" | stored {writer.ticks:,} ticks, {writer.candles:,} candle updates"
        f" | lag {engine_lag:,} ticks{storage}{gaps}{link}{done}"
    )


def connection(venue: FeedCounters) -> str:
    """``connected``, or ``connecting`` / ``reconnecting`` with the last error, if any."""
    if venue.connected:
        return "connected"
    state = "reconnecting" if venue.connects else "connecting"
    return state if venue.last_error is None else f"{state} ({venue.last_error})"


def storage_state(writer: WriterStats, paused: bool = False) -> str:
    """Empty while all is well; else ``database unavailable (why)``, what the writer holds,
    and ``feed paused`` while the feed waits for room on the bus (backpressure)."""
    parts = []
    if writer.database_error is not None:
        parts.append(f"database unavailable ({writer.database_error})")
    if parts and writer.held:
        parts.append(f"holding {writer.held:,} records ({writer.held_bytes / 2**20:.1f} MiB)")
    if paused:
        parts.append("feed paused: storage is behind (backpressure)")
    return ", ".join(parts)
