"""The status line of ``mdp up``: counts read from the platform's metrics, a live venue's
connection, and the storage's state."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from ingest.venues.session import FeedCounters
from mdp.status import Counts, connection, counts_from, status_line, storage_state
from storage.writer import WriterStats
from telemetry.metrics import (
    ENGINE_CANDLES,
    ENGINE_TICKS,
    INGEST_GAPS,
    INGEST_TICKS,
    REGISTRY,
    WRITER_ROWS,
    count_reject,
)


def test_the_line_counts_what_came_in_and_went_out() -> None:
    counts = Counts(
        ticks_in=1_500, gaps=1, engine_ticks=1_200, candles_out=30, rejects=3,
        stored_ticks=1_100, stored_candles=28,
    )  # fmt: skip
    assert status_line(counts, WriterStats()) == (
        "ticks in 1,500 | candles out 30 | rejects 3 | stored 1,100 ticks, 28 candle updates"
        " | lag 300 ticks | feed gaps 1"
    )
    assert status_line(counts, WriterStats(), finished=True).endswith(" | feed finished")


def test_the_counts_are_the_metrics_since_the_platform_started() -> None:
    started = counts_from()
    INGEST_TICKS.labels("TEST").inc(40)
    INGEST_GAPS.labels("TEST").inc()
    ENGINE_TICKS.inc(25)
    ENGINE_CANDLES.inc(7)
    count_reject("TEST:BTCUSD", "bad_row")
    count_reject(None, "undecodable")
    WRITER_ROWS.labels("ticks").inc(20)
    WRITER_ROWS.labels("candles").inc(6)
    WRITER_ROWS.labels("gaps").inc(1)
    assert counts_from() - started == Counts(
        ticks_in=40, gaps=1, engine_ticks=25, candles_out=7, rejects=2, stored_ticks=20,
        stored_candles=6,
    )  # fmt: skip


def test_the_counts_read_their_counters_only_and_agree_with_a_scrape() -> None:
    collected = 0

    class Sessions(Collector):
        """A live gauge as a gateway's: costly to read, and none of the status line's."""

        def collect(self) -> Iterator[GaugeMetricFamily]:
            nonlocal collected
            collected += 1
            yield GaugeMetricFamily("mdp_test_sessions", "sessions", value=5_000)

    INGEST_TICKS.labels("TEST").inc(3)
    WRITER_ROWS.labels("candles").inc(2)
    sessions = Sessions()
    REGISTRY.register(sessions)  # the registry describes it by collecting it once
    try:
        collected = 0
        counts = counts_from()
        assert collected == 0
        scraped: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
            for sample in family.samples:
                key = (sample.name, sample.labels.get("kind", ""))
                scraped[key] = scraped.get(key, 0.0) + sample.value
        assert collected == 1  # a scrape reads it
    finally:
        REGISTRY.unregister(sessions)
    assert counts == Counts(
        ticks_in=scraped[("mdp_ingest_ticks_total", "")],
        gaps=scraped.get(("mdp_ingest_gaps_total", ""), 0.0),
        engine_ticks=scraped.get(("mdp_engine_ticks_total", ""), 0.0),
        candles_out=scraped.get(("mdp_engine_candles_total", ""), 0.0),
        rejects=scraped.get(("mdp_ticks_rejected_total", ""), 0.0),
        stored_ticks=scraped.get(("mdp_writer_rows_total", "ticks"), 0.0),
        stored_candles=scraped[("mdp_writer_rows_total", "candles")],
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
    line = status_line(Counts(), WriterStats(), venue)
    assert line.endswith(" | venue reconnecting (no frame for 5 s (stale feed))")


def test_a_database_outage_and_backpressure_are_on_the_line() -> None:
    writer = WriterStats(ticks=10, held=1_234, held_bytes=3 * 2**20)
    assert storage_state(writer) == ""  # records in flight are no news
    writer.database_error = "connection refused"
    assert storage_state(writer) == (
        "database unavailable (connection refused), holding 1,234 records (3.0 MiB)"
    )
    line = status_line(Counts(ticks_in=10, engine_ticks=10), writer, paused=True)
    assert line.endswith(
        " | lag 0 ticks | database unavailable (connection refused), holding 1,234 records"
        " (3.0 MiB), feed paused: storage is behind (backpressure)"
    )
    writer.database_error = None
    assert storage_state(writer, paused=True) == "feed paused: storage is behind (backpressure)"
