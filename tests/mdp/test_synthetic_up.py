"""``mdp up`` on the synthetic market, on a real PostgreSQL: the first start stores a day of
history through the normal path (ticks and every interval's candles), and a restart continues
from the last stored trade: its price and its time, with the time it was down filled in, on
every instrument, also after hours down with the engine restored from its checkpoint."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from decimal import Decimal

import numpy as np

from core.candles import CandleStatus
from core.engine import EngineConfig
from core.intervals import Interval, parse_intervals
from core.numbers import to_raw
from core.secrets import DatabaseUrl
from core.ticks import TickBatch
from ingest.synthetic import DEFAULT_INSTRUMENTS, NS_PER_SECOND, START_PRICES
from mdp.embedded import FeedSettings, Platform, PlatformSettings
from storage import PostgresStore

BTC = "SYNTH:BTCUSD"
WAIT = 60.0
INTERVALS = ("1s", "1m", "1h")
MINUTE = Interval.parse("1m")
FOREVER = 2**62


async def wait_for(condition: Callable[[], object], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.05)


async def run_until_stored(
    url: str,
    history: float,
    instruments: tuple[str, ...] = (BTC,),
    clock: Callable[[], int] = time.time_ns,
) -> Platform:
    """Run ``mdp up``'s platform on the synthetic ``instruments`` with the wall clock ``clock``
    until it says its history is stored and has stored some live ticks after it."""
    settings = PlatformSettings(
        database_url=DatabaseUrl(url),
        feed=FeedSettings(instruments=instruments, rate=20.0, history=history),
        engine=EngineConfig(intervals=parse_intervals(list(INTERVALS))),
        http_port=0,
        ws_port=0,
    )
    out = io.StringIO()
    platform = Platform(settings, out, clock)
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    try:
        await wait_for(lambda: running.done() or "history since" in out.getvalue())
        writer = platform.writer
        assert writer is not None
        stored = writer.stats.ticks
        await wait_for(lambda: running.done() or writer.stats.ticks > stored + 20)
    finally:
        stop.set()
        await asyncio.wait_for(running, WAIT)
    return platform


def printed(platform: Platform) -> str:
    assert isinstance(platform.out, io.StringIO)
    return platform.out.getvalue()


async def test_the_first_start_stores_history_on_every_interval(migrated_database: str) -> None:
    hours = 3
    out = printed(await run_until_stored(migrated_database, hours * 3600.0))
    async with PostgresStore.open(migrated_database) as store:
        now = time.time_ns()
        for label in INTERVALS:
            interval = parse_intervals([label])[0]
            candles = await store.last_candles(BTC, interval, now, 100_000)
            assert candles, label
            # history reaches back the hours asked for, on every interval
            assert candles[0].open_time <= now - (hours - 1) * 3600 * NS_PER_SECOND, label
        minutes = await store.last_candles(BTC, parse_intervals(["1m"])[0], now, 1_000)
    assert len(minutes) >= hours * 60 - 1
    assert "history since" in out


async def test_a_restart_continues_from_the_last_stored_price_and_time(
    migrated_database: str,
) -> None:
    # An earlier run stored its last BTC trade 30 s ago, at a price far from the seed's.
    stopped_at = time.time_ns() - 30 * NS_PER_SECOND
    price = Decimal("51234.56")
    last = TickBatch(
        instrument=BTC, price_scale=2, size_scale=6,
        trade_id=np.array([stopped_at // 1000], dtype=np.int64),
        price=np.array([to_raw(price, 2)], dtype=np.int64),
        size=np.array([1000], dtype=np.int64),
        side=np.array([1], dtype=np.int8),
        ts_event=np.array([stopped_at], dtype=np.int64),
        ts_recv=np.array([stopped_at], dtype=np.int64),
        trades=np.array([1], dtype=np.int64),
    )  # fmt: skip
    async with PostgresStore.open(migrated_database) as store:
        await store.write(ticks=[last])
    out = printed(await run_until_stored(migrated_database, 3600.0))
    assert f"feed: {BTC} continues from its last stored price {price}" in out
    async with PostgresStore.open(migrated_database) as store:
        ticks = await store.ticks(BTC, 0, time.time_ns() + NS_PER_SECOND)
    ts = ticks.ts_event
    prices = ticks.price
    assert int(ts[0]) == stopped_at  # nothing older was made: the hour before it is not redone
    # The time it was down is filled, a tick about every second ...
    assert np.diff(ts).max() <= 2 * NS_PER_SECOND
    # ... and the walk goes on from the stored price, never back to the seed's.
    step = max(1, to_raw(price, 2) // 10_000) * 4  # the history weighs 20 live ticks: isqrt(20)
    assert np.abs(np.diff(prices)).max() <= step
    seed = to_raw(START_PRICES[BTC], 2)
    assert np.abs(prices - seed).min() > seed // 10


async def test_a_restart_after_hours_down_refills_every_instrument_as_a_live_run_would(
    migrated_database: str,
) -> None:
    """The first run stops 3 h ago (its wall clock is set back) and leaves the engine's
    checkpoint, with each instrument's last receipt 3 h old; the restart refills the 3 h of
    every instrument, one after another through the same engine."""
    down = 3 * 3600 * NS_PER_SECOND
    await run_until_stored(
        migrated_database, 600.0, DEFAULT_INSTRUMENTS, lambda: time.time_ns() - down
    )
    platform = await run_until_stored(migrated_database, 86_400.0, DEFAULT_INSTRUMENTS)
    assert platform.engine is not None
    assert platform.engine.stats.rejected == 0  # no refill tick came too late for the engine
    async with PostgresStore.open(migrated_database) as store:
        for instrument in DEFAULT_INSTRUMENTS:
            for label in INTERVALS:
                interval = Interval.parse(label)
                candles = await store.candles(instrument, interval, 0, FOREVER)
                revised = [c.open_time for c in candles if c.status is CandleStatus.REVISED]
                assert revised == [], (instrument, label)  # each closed once, with its ticks
            minutes = await store.candles(instrument, MINUTE, 0, FOREVER)
            # the minutes run on without a hole from the first run's first into the second's
            # last, across the 3 h down ...
            opens = np.array([c.open_time for c in minutes], dtype=np.int64)
            assert opens[-1] - opens[0] > down
            assert set(np.diff(opens).tolist()) == {MINUTE.ns}, instrument
            # ... and each opens where the one before closed, give or take one step of the
            # walk (the history's steps weigh 300 live ones: isqrt(300) = 17 live steps)
            closes = [to_raw(c.close, 2) for c in minutes]
            for before, candle in zip(closes, minutes[1:], strict=False):
                step = max(1, before // 10_000) * 17
                assert abs(to_raw(candle.open, 2) - before) <= 2 * step, (instrument, candle)
