"""The status line of ``mdp up``: counts, and a live venue's connection."""

from __future__ import annotations

from ingest.publisher import FeedStats
from ingest.venues.session import FeedCounters
from mdp.status import connection, status_line, storage_state
from storage.writer import WriterStats
from streams.engine_runner import EngineStats


def test_the_line_counts_what_came_in_and_went_out() -> None:
    feed = FeedStats(ticks=1_500, bad_rows=2, gaps=1)
    engine = EngineStats(ticks=1_200, candles=30, rejected=1)
    writer = WriterStats(ticks=1_100, candles=28)
    line = status_line(feed, engine, writer)
    assert line == (
        "ticks in 1,500 | candles out 30 | rejects 3 | stored 1,100 ticks, 28 candle updates"
        " | lag 300 ticks | feed gaps 1"
    )


def test_a_venue_feed_shows_its_connection() -> None:
    venue = FeedCounters()
    assert connection(venue) == "connecting"
    venue.last_error = "connection refused"
    assert connection(venue) == "connecting (connection refused)"
    venue.connects, venue.connected = 1, True
    assert connection(venue) == "connected"
    venue.connected, venue.last_error = False, "no frame for 5 s (stale feed)"
    assert connection(venue) == "reconnecting (no frame for 5 s (stale feed))"
    line = status_line(FeedStats(), EngineStats(), WriterStats(), venue)
    assert line.endswith(" | venue reconnecting (no frame for 5 s (stale feed))")


def test_a_database_outage_and_backpressure_are_on_the_line() -> None:
    writer = WriterStats(ticks=10, held=1_234, held_bytes=3 * 2**20)
    assert storage_state(writer) == ""  # records in flight are no news
    writer.database_error = "connection refused"
    assert storage_state(writer) == (
        "database unavailable (connection refused), holding 1,234 records (3.0 MiB)"
    )
    line = status_line(FeedStats(ticks=10), EngineStats(ticks=10), writer, paused=True)
    assert line.endswith(
        " | lag 0 ticks | database unavailable (connection refused), holding 1,234 records"
        " (3.0 MiB), feed paused: storage is behind (backpressure)"
    )
    writer.database_error = None
    assert storage_state(writer, paused=True) == "feed paused: storage is behind (backpressure)"
