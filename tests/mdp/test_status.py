"""The status line of ``mdp up``: counts, and a live venue's connection."""

from __future__ import annotations

from ingest.publisher import FeedStats
from ingest.venues.session import FeedCounters
from mdp.status import connection, status_line
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
