"""The ingest, engine and writer metrics move as the work is done: per venue, per reason, per
batch; every assertion reads the process's registry, as a scrape would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

from core import codecs
from core.engine import CandleEngine, EngineConfig
from core.gaps import FeedGap, GapReason
from core.intervals import parse_intervals
from core.ticks import Side, Tick, TickBatch
from core.topics import TICKS
from ingest.files import BadRow
from ingest.publisher import FeedEvent, FeedPublisher
from storage.memory_store import MemoryStore
from storage.writer import StorageWriter
from streams.bus import Record
from streams.engine_runner import EngineStats, engine_step
from streams.memory import MemoryBus
from streams.processor import decode_batch
from tests.telemetry.values import value

KRAKEN = "KRAKEN:BTC/USD"
BINANCE = "BINANCE:BTCUSDT"
HOUR_NS = 3600 * 10**9


def ticks(instrument: str, first_id: int, count: int, ts_ns: int) -> TickBatch:
    return TickBatch.from_ticks(
        [
            Tick(instrument, first_id + i, Decimal("100.5"), Decimal("0.25"), Side.BUY,
                 ts_ns + i, ts_ns + i)
            for i in range(count)
        ]
    )  # fmt: skip


async def feed(events: list[FeedEvent]) -> AsyncIterator[FeedEvent]:
    for event in events:
        yield event


async def test_a_feed_counts_its_ticks_batches_and_gaps_per_venue() -> None:
    now = time.time_ns()
    gap = FeedGap(
        instrument=KRAKEN, start_ns=now, end_ns=now + 10**9, reason=GapReason.SEQUENCE, detail="x"
    )
    before = {
        (name, venue): value(name, venue=venue)
        for name in ("mdp_ingest_ticks_total", "mdp_ingest_batches_total", "mdp_ingest_gaps_total")
        for venue in ("KRAKEN", "BINANCE")
    }
    async with MemoryBus(partitions=1) as bus:
        publisher = FeedPublisher(bus)
        events: list[FeedEvent] = [
            ticks(KRAKEN, 1, 3, now),
            gap,
            ticks(KRAKEN, 4, 2, now),
            ticks(BINANCE, 1, 7, now),
        ]
        await asyncio.wait_for(publisher.run(feed(events)), 5)

    def grew(name: str, venue: str) -> float:
        return value(name, venue=venue) - before[name, venue]

    assert grew("mdp_ingest_ticks_total", "KRAKEN") == 5
    assert grew("mdp_ingest_ticks_total", "BINANCE") == 7
    assert grew("mdp_ingest_batches_total", "KRAKEN") == 2
    assert grew("mdp_ingest_gaps_total", "KRAKEN") == 1
    assert grew("mdp_ingest_gaps_total", "BINANCE") == 0


async def test_a_rejected_venue_message_counts_for_its_venue_and_reason() -> None:
    reason = codecs.RejectCode.BAD_VENUE_MESSAGE.value
    kraken, binance = (
        value("mdp_ticks_rejected_total", venue="KRAKEN", reason=reason),
        value("mdp_ticks_rejected_total", venue="BINANCE", reason=reason),
    )
    bad_rows = value("mdp_ticks_rejected_total", venue="unknown", reason="bad_row")
    async with MemoryBus(partitions=1) as bus:
        publisher = FeedPublisher(bus)
        publisher.reject(
            codecs.RejectedMessage(
                reason=reason, detail="price: not a number", source="ingest", instrument=KRAKEN
            )
        )
        publisher.bad_row(BadRow(line=17, reason="size: negative", source="trades.csv"))
        await asyncio.wait_for(publisher.run(feed([])), 5)
    assert value("mdp_ticks_rejected_total", venue="KRAKEN", reason=reason) == kraken + 1
    assert value("mdp_ticks_rejected_total", venue="BINANCE", reason=reason) == binance
    assert value("mdp_ticks_rejected_total", venue="unknown", reason="bad_row") == bad_rows + 1


def records(*batches: TickBatch) -> list[Record]:
    return [
        Record(
            TICKS, 0, offset, codecs.instrument_key(b.instrument), codecs.encode_tick_batch(b), 0
        )
        for offset, b in enumerate(batches)
    ]


def test_the_engine_step_counts_ticks_candles_late_rejects_and_its_lag() -> None:
    engine = CandleEngine(EngineConfig(intervals=parse_intervals(["1s", "1m"])))
    stats = EngineStats()
    now = time.time_ns()
    late = "late_beyond_horizon"
    before = {
        "ticks": value("mdp_engine_ticks_total"),
        "candles": value("mdp_engine_candles_total"),
        "rejects": value("mdp_ticks_rejected_total", venue="KRAKEN", reason=late),
        "lags": value("mdp_engine_lag_seconds_count"),
        "lag_sum": value("mdp_engine_lag_seconds_sum"),
        "within_10s": value("mdp_engine_lag_seconds_bucket", le="10.0"),
    }
    # 4 ticks 5 s old, then 2 ticks older than the horizon (an hour): rejected
    first = decode_batch(records(ticks(KRAKEN, 1, 4, now - 5 * 10**9)), "test")
    engine_step(engine, first, now, stats, "test")
    second = decode_batch(records(ticks(KRAKEN, 100, 2, now - 2 * HOUR_NS)), "test")
    engine_step(engine, second, now, stats, "test")

    assert value("mdp_engine_ticks_total") - before["ticks"] == 6
    assert value("mdp_engine_candles_total") - before["candles"] == stats.candles > 0
    assert stats.rejected == 2
    assert value("mdp_ticks_rejected_total", venue="KRAKEN", reason=late) - before["rejects"] == 2
    # one lag observation per step (not per tick): 5 s, then 2 h
    assert value("mdp_engine_lag_seconds_count") - before["lags"] == 2
    lag_sum = value("mdp_engine_lag_seconds_sum") - before["lag_sum"]
    assert abs(lag_sum - (5 + 2 * 3600 - 3e-9)) < 1e-3
    assert value("mdp_engine_lag_seconds_bucket", le="10.0") - before["within_10s"] == 1
    # the newest event time seen: the first batch's (the late one is older)
    assert abs(value("mdp_engine_event_time_seconds") - (now - 5 * 10**9) / 1e9) < 1e-3


async def test_the_writer_times_each_batch_and_counts_the_rows_it_stores() -> None:
    before = {
        "writes": value("mdp_writer_batch_seconds_count"),
        "ticks": value("mdp_writer_rows_total", kind="ticks"),
    }
    async with MemoryBus(partitions=1) as bus:
        topic = bus.topic(TICKS)
        for first in (1, 11):
            batch = ticks(KRAKEN, first, 10, time.time_ns())
            await topic.publish(codecs.instrument_key(KRAKEN), codecs.encode_tick_batch(batch))
        writer = StorageWriter(bus, MemoryStore())
        running = asyncio.create_task(writer.run())
        async with asyncio.timeout(5):
            while writer.stats.ticks < 20:
                await asyncio.sleep(0.01)
            # while it runs, the buffer gauge reads this writer's backlog: empty once stored
            assert value("mdp_writer_buffer_records") == 0
        writer.drain()
        await asyncio.wait_for(running, 5)
    assert value("mdp_writer_rows_total", kind="ticks") - before["ticks"] == 20
    assert value("mdp_writer_batch_seconds_count") - before["writes"] == writer.stats.writes >= 1
