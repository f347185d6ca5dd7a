"""``mdp up`` on the synthetic market, on a real PostgreSQL: the first start stores a day of
history through the normal path (ticks and every interval's candles), and a restart continues
from the last stored trade: its price and its time, with the time it was down filled in."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from decimal import Decimal

import numpy as np

from core.engine import EngineConfig
from core.intervals import parse_intervals
from core.numbers import to_raw
from core.secrets import DatabaseUrl
from core.ticks import TickBatch
from ingest.synthetic import NS_PER_SECOND, START_PRICES
from mdp.embedded import FeedSettings, Platform, PlatformSettings
from storage import PostgresStore

BTC = "SYNTH:BTCUSD"
WAIT = 60.0
INTERVALS = ("1s", "1m", "1h")


async def wait_for(condition: Callable[[], object], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.05)


async def run_until_stored(url: str, history: float) -> str:
    """Run ``mdp up``'s platform on the synthetic BTC until it says its history is stored and
    has stored some live ticks after it; what it printed."""
    settings = PlatformSettings(
        database_url=DatabaseUrl(url),
        feed=FeedSettings(instruments=(BTC,), rate=20.0, history=history),
        engine=EngineConfig(intervals=parse_intervals(list(INTERVALS))),
        http_port=0,
        ws_port=0,
    )
    out = io.StringIO()
    platform = Platform(settings, out)
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
    return out.getvalue()


async def test_the_first_start_stores_history_on_every_interval(migrated_database: str) -> None:
    hours = 3
    out = await run_until_stored(migrated_database, hours * 3600.0)
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
    out = await run_until_stored(migrated_database, 3600.0)
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
