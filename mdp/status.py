"""The live status line of ``mdp up``: what came in, what went out, what is still on its way."""

from __future__ import annotations

from ingest.publisher import FeedStats
from storage.writer import WriterStats
from streams.engine_runner import EngineStats


def status_line(feed: FeedStats, engine: EngineStats, writer: WriterStats) -> str:
    """One line: ticks in, candles out, rejects, stored rows, the backlog (lag) in ticks, and
    the feed gaps a live venue reported (when there were any)."""
    rejects = feed.bad_rows + engine.rejected + engine.undecodable
    engine_lag = max(0, feed.ticks - engine.ticks)
    gaps = f" | feed gaps {feed.gaps:,}" if feed.gaps else ""
    done = " | feed finished" if feed.finished else ""
    return (
        f"ticks in {feed.ticks:,} | candles out {engine.candles:,} | rejects {rejects:,}"
        f" | stored {writer.ticks:,} ticks, {writer.candles:,} candle updates"
        f" | lag {engine_lag:,} ticks{gaps}{done}"
    )
