"""The engine runner on the in-process bus: real Kraken trades in, Kraken's candles out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from core import codecs
from core.candles import Candle, CandleStatus
from core.engine import CandleEngine, EmptyPolicy, EngineConfig
from core.gaps import FeedGap, GapReason
from core.intervals import parse_intervals
from core.ticks import TickBatch
from core.topics import CANDLES, TICKS, TICKS_REJECTED
from ingest.files.reader import read_ticks
from ingest.pacing import received_at
from streams.bus import Record
from streams.checkpoints import MemoryCheckpoints
from streams.engine_runner import (
    EngineRunner,
    EngineStats,
    engine_step,
    joined,
    process,
    restore_engine,
)
from streams.memory import MemoryBus
from streams.processor import Batch
from tests.storage import factories

WAIT = 10.0
KRAKEN = Path("kraken-xbtusdt-2025-11-10")
LAST_MINUTE = 1762807740 * 1_000_000_000  # 20:49 UTC, the last official row
MINUTE = 60 * 1_000_000_000
HOLE = (1762797660 * 1_000_000_000, 1762797810 * 1_000_000_000)  # 18:01:00 to 18:03:30 UTC


def config() -> EngineConfig:
    return EngineConfig(
        intervals=parse_intervals(["1m"]),
        empty_by_venue=MappingProxyType({"KRAKEN": EmptyPolicy.FILL}),
        emit_open=False,
    )


def kraken_batches(shared_data: Path, size: int = 20) -> list[TickBatch]:
    (whole,) = list(read_ticks(shared_data / KRAKEN / "trades.json"))
    now = time.time_ns()
    return [received_at(whole.take(slice(i, i + size)), now) for i in range(0, len(whole), size)]


def official(shared_data: Path) -> dict[int, tuple[Decimal, ...]]:
    rows = json.loads((shared_data / KRAKEN / "ohlc-1m.json").read_text())["result"]["XBTUSDT"]
    return {
        t * 1_000_000_000: (Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v), Decimal(n))
        for t, o, h, lo, c, _, v, n in rows
    }


def values(candle: Candle) -> tuple[Decimal, ...]:
    return (
        candle.open, candle.high, candle.low, candle.close, candle.volume, Decimal(candle.trades),
    )  # fmt: skip


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus(partitions=2)
    yield bus
    await asyncio.wait_for(bus.close(), WAIT)


async def publish(bus: MemoryBus, batches: list[TickBatch]) -> None:
    ticks = bus.topic(TICKS)
    for batch in batches:
        await ticks.publish(
            codecs.instrument_key(batch.instrument), codecs.encode_tick_batch(batch)
        )


async def final_candles(bus: MemoryBus, until_open_time: int) -> dict[int, Candle]:
    """Read md.candles until the candle opening at ``until_open_time`` has closed."""
    final: dict[int, Candle] = {}
    async with bus.subscribe("test-reader", [CANDLES]) as reader:
        while until_open_time not in final:
            for record in await reader.poll(500, 1.0):
                candle = codecs.decode_candle(record.value)
                final[candle.open_time] = candle
    return final


def later(seconds: float) -> int:
    """A wall clock ahead of now: the engine sees the feed as idle for that long."""
    return time.time_ns() + round(seconds * 1e9)


async def test_kraken_trades_through_the_runner_give_kraken_candles(
    bus: MemoryBus, shared_data: Path
) -> None:
    runner = EngineRunner(bus, CandleEngine(config()), clock=lambda: later(15))
    task = asyncio.create_task(runner.run())
    reading = asyncio.create_task(final_candles(bus, LAST_MINUTE))
    await asyncio.sleep(0.05)  # the reader joins before the candles are published
    await publish(bus, kraken_batches(shared_data))
    final = await asyncio.wait_for(reading, WAIT)
    runner.stop()
    await asyncio.wait_for(task, WAIT)
    expected = official(shared_data)
    assert {t: values(final[t]) for t in expected} == expected
    assert runner.stats.ticks == 471


def holed(batches: list[TickBatch]) -> tuple[list[TickBatch], FeedGap]:
    """The batches without the trades of :data:`HOLE`, and the gap a connector would send."""
    start, end = HOLE
    kept = [b.take((b.ts_event < start) | (b.ts_event >= end)) for b in batches]
    assert sum(map(len, kept)) < sum(map(len, batches))
    gap = FeedGap(
        instrument=batches[0].instrument,
        start_ns=start,
        end_ns=end,
        reason=GapReason.SEQUENCE,
        detail="trades missing",
    )
    return [b for b in kept if len(b)], gap


async def test_a_feed_gap_on_md_ticks_flags_exactly_the_candles_over_it(
    bus: MemoryBus, shared_data: Path
) -> None:
    batches, gap = holed(kraken_batches(shared_data))
    runner = EngineRunner(bus, CandleEngine(config()), clock=lambda: later(15))
    task = asyncio.create_task(runner.run())
    reading = asyncio.create_task(final_candles(bus, LAST_MINUTE))
    await asyncio.sleep(0.05)
    half = len(batches) // 2
    await publish(bus, batches[:half])
    await bus.topic(TICKS).publish(
        codecs.instrument_key(gap.instrument), codecs.encode_feed_gap(gap)
    )
    await publish(bus, batches[half:])
    final = await asyncio.wait_for(reading, WAIT)
    runner.stop()
    await asyncio.wait_for(task, WAIT)
    assert (runner.stats.gaps, runner.stats.undecodable) == (1, 0)
    flagged = {t for t, candle in final.items() if candle.gap}
    assert flagged == {t for t in final if gap.overlaps(t, t + MINUTE)}
    assert len(flagged) == 3  # 18:01, 18:02, 18:03: flat or thinned by the hole
    expected = official(shared_data)
    assert {t: values(final[t]) for t in expected if t not in flagged} == {
        t: row for t, row in expected.items() if t not in flagged
    }


def test_process_applies_a_gap_in_its_place_among_the_batches() -> None:
    engine = CandleEngine(config())
    gap = FeedGap(
        instrument="TEST:ABC", start_ns=10**18, end_ns=10**18 + 1, reason=GapReason.SEQUENCE
    )
    payloads = [b"\x00not md.ticks", codecs.encode_feed_gap(gap)]
    records = [Record(TICKS, 0, n, b"TEST:ABC", value, 0) for n, value in enumerate(payloads)]
    stats = EngineStats()
    messages = process(engine, records, 10**18, stats, "test")
    assert (stats.gaps, stats.undecodable, stats.batches) == (1, 1, 0)
    assert [topic for topic, _, _ in messages] == [TICKS_REJECTED]
    assert engine.gaps.spans("TEST:ABC") == [(gap.start_ns, gap.end_ns)]


async def test_undecodable_messages_are_rejected_and_the_runner_goes_on(
    bus: MemoryBus, shared_data: Path
) -> None:
    rejected = bus.subscribe("test-rejects", [TICKS_REJECTED])
    runner = EngineRunner(bus, CandleEngine(config()), clock=lambda: later(15))
    task = asyncio.create_task(runner.run())
    reading = asyncio.create_task(final_candles(bus, LAST_MINUTE))
    await asyncio.sleep(0.05)
    await bus.topic(TICKS).publish(b"KRAKEN:XBTUSDT", b"\x00not a tick batch")
    await publish(bus, kraken_batches(shared_data))
    await asyncio.wait_for(reading, WAIT)
    runner.stop()
    await asyncio.wait_for(task, WAIT)
    (record,) = await asyncio.wait_for(rejected.poll(10, WAIT), WAIT)
    message = codecs.decode_rejected(record.value)
    assert message.reason == codecs.RejectCode.UNDECODABLE
    assert message.payload == b"\x00not a tick batch"
    assert message.origin is not None
    assert message.origin.startswith(f"{TICKS}/")
    assert runner.stats.undecodable == 1
    await rejected.close()


async def test_a_runner_restarted_from_its_checkpoint_ends_with_the_same_candles(
    bus: MemoryBus, shared_data: Path
) -> None:
    store = MemoryCheckpoints()
    batches = kraken_batches(shared_data)
    reading = asyncio.create_task(final_candles(bus, LAST_MINUTE))
    await asyncio.sleep(0.05)
    first = EngineRunner(bus, CandleEngine(config()), store, checkpoint_every=0.0)
    task = asyncio.create_task(first.run())
    await publish(bus, batches[:10])
    while first.stats.batches < 10:
        await asyncio.sleep(0.01)
    first.stop()
    await asyncio.wait_for(task, WAIT)

    engine = await restore_engine(
        store, first.group, lambda: CandleEngine(config()), time.time_ns()
    )
    assert engine is not first.engine
    second = EngineRunner(bus, engine, store, clock=lambda: later(15))
    task = asyncio.create_task(second.run())
    await publish(bus, batches[10:])
    final = await asyncio.wait_for(reading, WAIT)
    second.stop()
    await asyncio.wait_for(task, WAIT)
    assert second.stats.ticks == 471 - first.stats.ticks
    expected = official(shared_data)
    assert {t: values(final[t]) for t in expected} == expected


@pytest.mark.parametrize("late_by", [60.0, 7200.0], ids=["a minute", "beyond the horizon"])
async def test_a_runner_started_after_a_backlog_publishes_each_candle_right_once(
    bus: MemoryBus, shared_data: Path, late_by: float
) -> None:
    """The ticks wait on md.ticks before the runner starts (small polls: a long catch-up);
    its wall clock is ahead of their receipt times, by more than the horizon in one run."""
    published: list[Candle] = []
    reader = bus.subscribe("test-reader", [CANDLES])
    await publish(bus, kraken_batches(shared_data, size=5))
    runner = EngineRunner(bus, CandleEngine(config()), clock=lambda: later(late_by), max_records=3)
    task = asyncio.create_task(runner.run())
    while LAST_MINUTE not in {c.open_time for c in published}:
        published.extend(codecs.decode_candle(r.value) for r in await reader.poll(500, WAIT))
    runner.stop()
    await asyncio.wait_for(task, WAIT)
    await reader.close()
    assert runner.stats.rejected == 0
    assert [c for c in published if c.status is not CandleStatus.CLOSED] == []
    first = {c.open_time: values(c) for c in published}
    assert len(first) == len(published), "each candle is published once"
    expected = official(shared_data)
    assert {t: first[t] for t in expected} == expected


class Unreachable(MemoryCheckpoints):
    """A checkpoint store that can be taken away: saves then raise ``ConnectionError``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def save(self, name: str, data: bytes) -> None:
        if self.down:
            raise ConnectionError("connection refused")
        await super().save(name, data)


async def test_a_runner_goes_on_while_its_checkpoint_store_is_away_and_commits_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    checkpoints = Unreachable()
    checkpoints.down = True
    key = codecs.instrument_key("TEST:BTCUSD")
    tick_batch = factories.batch(*(factories.tick(i, i * 10**9) for i in range(10)))
    async with MemoryBus(partitions=1) as bus:
        runner = EngineRunner(
            bus, CandleEngine(config()), checkpoints, checkpoint_every=0.0, poll_timeout=0.01
        )
        running = asyncio.create_task(runner.run())
        await asyncio.sleep(0)
        await bus.topic(TICKS).publish(key, codecs.encode_tick_batch(tick_batch))
        async with asyncio.timeout(WAIT):
            while runner.stats.ticks < len(tick_batch):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # several checkpoints tried and failed meanwhile
        assert not running.done()
        probe = bus.subscribe(runner.group, [TICKS])
        assert await probe.committed() == {}  # nothing committed that no checkpoint covers
        await probe.close()
        checkpoints.down = False
        async with asyncio.timeout(WAIT):
            while await checkpoints.load(runner.group) is None:
                await asyncio.sleep(0.01)
        runner.stop()
        await asyncio.wait_for(running, WAIT)
        async with bus.subscribe(runner.group, [TICKS]) as after:
            assert list((await after.committed()).values()) == [1]
    told = [r.message for r in caplog.records if "checkpoint store" in r.message]
    assert told[0].startswith("checkpoint store unavailable (connection refused)")
    assert told[-1].startswith("checkpoint store available again")
    assert len(told) == 2  # once, not per attempt


@pytest.mark.parametrize("held", [False, True], ids=["feed free", "feed held back"])
async def test_an_empty_poll_moves_the_wall_clock_only_when_no_feed_is_held_back(
    held: bool,
) -> None:
    """A feed waiting for room on md.ticks (backpressure) has ticks still to come: the empty
    polls meanwhile must not close their candles on the wall clock before they arrive."""
    async with MemoryBus(partitions=1) as bus:
        reader = bus.subscribe("test-reader", [CANDLES])
        key = codecs.instrument_key("TEST:BTCUSD")
        await bus.topic(TICKS).publish(key, codecs.encode_tick_batch(factories.batch(
            factories.tick(1, 0))))  # fmt: skip
        runner = EngineRunner(
            bus, CandleEngine(config()), clock=lambda: factories.T0 + 3600 * 10**9,
            poll_timeout=0.01, input_held=lambda: held,
        )  # fmt: skip
        task = asyncio.create_task(runner.run())
        async with asyncio.timeout(WAIT):
            while runner.stats.ticks < 1:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # empty polls meanwhile
        runner.stop()
        await asyncio.wait_for(task, WAIT)
        closed = [codecs.decode_candle(r.value) for r in await reader.poll(100, 0.1)]
        await reader.close()
    assert len(closed) == (0 if held else 1)


class Hanging(MemoryCheckpoints):
    """A checkpoint store whose saves wait until :attr:`answer` is set (a database whose
    packets are dropped: nothing refuses, nothing answers)."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = asyncio.Event()
        self.asked = 0

    async def save(self, name: str, data: bytes) -> None:
        self.asked += 1
        await self.answer.wait()
        await super().save(name, data)


async def test_a_checkpoint_store_that_hangs_holds_neither_the_engine_nor_commits_early() -> None:
    checkpoints = Hanging()
    key = codecs.instrument_key("TEST:BTCUSD")
    async with MemoryBus(partitions=1) as bus:
        ticks = bus.topic(TICKS)
        runner = EngineRunner(
            bus, CandleEngine(config()), checkpoints, checkpoint_every=0.0, poll_timeout=0.01
        )
        running = asyncio.create_task(runner.run())
        await asyncio.sleep(0)
        await ticks.publish(key, codecs.encode_tick_batch(factories.batch(factories.tick(1, 0))))
        async with asyncio.timeout(WAIT):
            while checkpoints.asked < 1:
                await asyncio.sleep(0.01)
        for i in range(2, 12):  # the engine goes on while the save hangs
            batch = factories.batch(factories.tick(i, i * 10**9))
            await ticks.publish(key, codecs.encode_tick_batch(batch))
        async with asyncio.timeout(WAIT):
            while runner.stats.ticks < 11:
                await asyncio.sleep(0.01)
        assert checkpoints.asked == 1  # one save at a time
        async with bus.subscribe(runner.group, [TICKS]) as probe:
            assert await probe.committed() == {}  # nothing committed that no checkpoint covers
        checkpoints.answer.set()
        runner.stop()
        await asyncio.wait_for(running, WAIT)
        async with bus.subscribe(runner.group, [TICKS]) as after:
            assert list((await after.committed()).values()) == [11]  # the final checkpoint's
    restored = CandleEngine.restore(await checkpoints.load(runner.group) or b"", config())
    assert restored.instruments == ["TEST:BTCUSD"]


def batch_of(instrument: str, ids: list[int], price: int = 100, scale: int = 2) -> TickBatch:
    rows = len(ids)
    return TickBatch(
        instrument, scale, 0,
        np.array(ids, np.int64), np.full(rows, price, np.int64), np.ones(rows, np.int64),
        np.ones(rows, np.int8), np.array(ids, np.int64) * 10**9, np.array(ids, np.int64) * 10**9,
        np.ones(rows, np.int64),
    )  # fmt: skip


def test_joined_keeps_each_instruments_order_and_ends_a_run_at_a_gap_or_new_scales() -> None:
    gap = FeedGap(
        instrument="TEST:A",
        start_ns=5 * 10**9,
        end_ns=6 * 10**9,
        reason=GapReason.DISCONNECTED,
        ts_recv=7 * 10**9,
    )
    decoded: list[TickBatch | FeedGap] = [
        batch_of("TEST:A", [1, 2]), batch_of("TEST:B", [1]), batch_of("TEST:A", [3]), gap,
        batch_of("TEST:A", [7]), batch_of("TEST:B", [2], scale=3), batch_of("TEST:B", [3], scale=3),
        batch_of("TEST:A", [8, 9]),
    ]  # fmt: skip

    def shown(instrument: str) -> list[object]:
        return [
            "gap" if isinstance(m, FeedGap) else (m.price_scale, m.trade_id.tolist())
            for m in joined(decoded)
            if m.instrument == instrument
        ]

    assert shown("TEST:A") == [(2, [1, 2, 3]), "gap", (2, [7, 8, 9])]
    assert shown("TEST:B") == [(2, [1]), (3, [2, 3])]


def test_joined_stops_where_the_sums_would_pass_64_bits() -> None:
    big = 2**50  # price * size * rows must stay below 2**62: 2**50 * 1 * 4_096 would not
    decoded: list[TickBatch | FeedGap] = [
        batch_of("TEST:A", list(range(1, 2049)), price=big),
        batch_of("TEST:A", list(range(2049, 4097)), price=big),
    ]
    assert rows(joined(decoded)) == [2048, 2048]
    small: list[TickBatch | FeedGap] = [
        batch_of("TEST:A", list(range(1, 2049))),
        batch_of("TEST:A", list(range(2049, 4097))),
    ]
    assert rows(joined(small)) == [4096]


def sized(ids: range, size: int, size_scale: int) -> TickBatch:
    """Ticks of TEST:A at price 1.00, each of ``size`` (raw, at ``size_scale``)."""
    rows = len(ids)
    column = np.array(ids, np.int64)
    return TickBatch(
        "TEST:A", 2, size_scale, column, np.full(rows, 100, np.int64),
        np.full(rows, size, np.int64), np.ones(rows, np.int8), column * 10**9, column * 10**9,
        np.ones(rows, np.int64),
    )  # fmt: skip


def test_a_joined_step_takes_what_its_parts_take_once_the_engine_rescales_them() -> None:
    # The join's bound sees the batches' own scales; the engine first moves them to the
    # instrument's finer ones (sizes x 1,000 here). Each part's volume then fits 64 bits and
    # the joined one's does not: the engine sums it in Python ints. It refused it before, and
    # a worker met the same joined step again at every replay.
    size = 2**62 // (1_000 * 4_096) + 1
    assert size * 1_000 * 2_048 < 2**62 <= size * 1_000 * 4_096
    first = sized(range(1, 3), 1, size_scale=3)
    parts = [sized(range(3, 2_051), size, 0), sized(range(2_051, 4_099), size, 0)]
    assert rows(joined(parts)) == [4_096]  # under the bound on the batches' own scales

    def candles(join: bool) -> dict[int, tuple[Decimal, ...]]:
        engine, stats = CandleEngine(config()), EngineStats()
        last: dict[int, Candle] = {}
        for step in ([first], parts):
            batch = Batch([], list(step), [])
            for topic, _, value in engine_step(engine, batch, 0, stats, "test", join=join):
                if topic == CANDLES:
                    candle = codecs.decode_candle(value)
                    last[candle.open_time] = candle
        last.update((candle.open_time, candle) for candle in engine.flush().candles)
        return {t: (*values(c), Decimal(c.volume_raw)) for t, c in last.items()}

    by_parts, by_join = candles(join=False), candles(join=True)
    assert by_join == by_parts
    assert sum(v[-1] for v in by_join.values()) == 2 + 4_096 * size * 1_000  # exact


def rows(messages: list[TickBatch | FeedGap]) -> list[int | str]:
    return [len(m) if isinstance(m, TickBatch) else "gap" for m in messages]
