"""The embedded platform through a database outage, on a real PostgreSQL that the test stops
and starts (a private server of the test's own) or whose connections it terminates: the
platform stays up, the engine and the gateway go on with live data, the status line and
``/readyz`` say the database is unavailable, history reads answer 503, and afterwards the
stored candles equal a clean run's (``mdp candles`` on the same file), every tick once."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
from websockets.asyncio.client import connect

from core.candles import Candle
from core.secrets import DatabaseUrl
from mdp.embedded import FeedSettings, Platform, PlatformSettings
from storage import PostgresStore
from tests.mdp.test_embedded import (
    KRAKEN,
    MINUTE,
    ahead,
    engine_config,
    tick_rows,
)
from tests.storage.stoppable import StoppablePostgres

WAIT = 60.0
SPEED = 500.0
"""The Kraken file spans 3 h 26 min: about 25 s at this pace, long enough to stop the
database in the middle of it."""
INSTRUMENT = "KRAKEN:XBTUSDT"
READ = {"instrument": INSTRUMENT, "interval": "1m", "start": "2025-11-10T00:00:00Z"}
Row = tuple[Decimal | int | None, ...]


def reference(shared_data: Path) -> dict[int, Row]:
    """The clean run: ``mdp candles`` on the same file, offline, each candle's last form (the
    last minute included, which the file stops inside of: offline it stays open, live the idle
    clock closes it; its values are the same)."""
    done = subprocess.run(
        [
            sys.executable, "-m", "mdp.cli", "candles", str(shared_data / KRAKEN / "trades.json"),
            "--interval", "1m", "--empty", "fill", "--output-format", "jsonl",
        ],
        capture_output=True, text=True, check=True, timeout=WAIT,
    )  # fmt: skip
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return {
        int(datetime.strptime(r["open_time"], "%Y-%m-%dT%H:%M:%S%z").timestamp()) * 10**9: (
            *(Decimal(r[k]) for k in ("open", "high", "low", "close", "volume", "quote_volume")),
            *(r[k] for k in ("trades", "first_trade_id", "last_trade_id")),
        )
        for r in rows
    }


async def stored(url: str) -> dict[int, Row]:
    async with PostgresStore.open(url) as store:
        candles = await store.candles(INSTRUMENT, MINUTE, 0, 2**62)
    return {c.open_time: content(c) for c in candles}


def content(c: Candle) -> Row:
    """What ``mdp candles`` prints of a candle, but its status and revision."""
    prices = (c.open, c.high, c.low, c.close, c.volume, c.quote_volume)
    return (*prices, c.trades, c.first_trade_id, c.last_trade_id)


async def until(condition: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        result = condition()
        if await result if isinstance(result, Awaitable) else result:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def stored_ticks(platform: Platform) -> int:
    return 0 if platform.writer is None else platform.writer.stats.ticks


def replaying(url: str, shared_data: Path) -> PlatformSettings:
    return PlatformSettings(
        database_url=DatabaseUrl(url),
        feed=FeedSettings(replay=shared_data / KRAKEN / "trades.json", speed=SPEED),
        engine=engine_config(),
        http_port=0,
        ws_port=0,
        status_every=0.2,
    )


async def settled_to_clean_run(url: str, shared_data: Path) -> dict[int, Row]:
    """Wait until the stored candles equal the clean run's (the last minute closes on the idle
    clock, then settles); the clean run's."""
    expected = reference(shared_data)

    async def equal() -> bool:
        return await stored(url) == expected

    await until(equal, "the stored candles to equal a clean run's")
    return expected


class TickWatcher:
    """A WebSocket client of the gateway, subscribed to the instrument's live ticks."""

    def __init__(self) -> None:
        self.messages = 0
        self.subscribed = asyncio.Event()

    async def watch(self, gateway_url: str) -> None:
        async with connect(gateway_url) as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "channel": "ticks",
                                      "instrument": INSTRUMENT}))  # fmt: skip
            async for message in ws:
                kind = json.loads(message)["type"]
                if kind == "subscribed":
                    self.subscribed.set()
                self.messages += kind == "tick"


async def test_the_platform_rides_out_a_database_stop_and_stores_what_a_clean_run_gives(
    stoppable_postgres: StoppablePostgres, shared_data: Path
) -> None:
    url = stoppable_postgres.database()
    out = io.StringIO()
    platform = Platform(replaying(url, shared_data), out, clock=ahead(60))
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    try:
        await until(lambda: stored_ticks(platform) > 0, "the first stored ticks")
        writer, engine = platform.writer, platform.engine
        assert writer is not None
        assert engine is not None
        assert platform.chart_url is not None
        assert platform.gateway_url is not None
        api = platform.chart_url.rstrip("/")
        watcher = TickWatcher()
        watching = asyncio.create_task(watcher.watch(platform.gateway_url))
        await asyncio.wait_for(watcher.subscribed.wait(), WAIT)
        await asyncio.to_thread(stoppable_postgres.stop)
        engine_ticks, live_ticks = engine.stats.ticks, watcher.messages

        async with httpx.AsyncClient(base_url=api, timeout=WAIT) as http:
            await until(lambda: writer.stats.database_error is not None, "the writer to notice")
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            assert "database unavailable" in ready.json()["detail"]
            assert (await http.get("/healthz")).status_code == 200
            read = await http.get("/v1/candles", params=READ)
            assert read.status_code == 503
            assert read.headers["content-type"] == "application/problem+json"
            assert int(read.headers["retry-after"]) > 0
            assert read.json()["type"].endswith("/database-unavailable")
            await until(lambda: engine.stats.ticks > engine_ticks, "the engine to go on")
            await until(lambda: watcher.messages > live_ticks, "live ticks on the WebSocket")
            watching.cancel()
            await until(lambda: "database unavailable" in out.getvalue(), "the status line")
            assert not running.done()

            await asyncio.to_thread(stoppable_postgres.start)
            await until(lambda: writer.stats.database_error is None, "the writer to recover")
            await until(
                lambda: platform.feed is not None and platform.feed.stats.finished
                and writer.stats.held == 0, "the replay to be stored"
            )  # fmt: skip
            assert (await http.get("/readyz")).status_code == 200
            again = await http.get("/v1/candles", params=READ)
            assert again.status_code == 200

        expected = await settled_to_clean_run(url, shared_data)
        assert not running.done()
    finally:
        stop.set()
        await asyncio.wait_for(running, WAIT)
    assert await stored(url) == expected
    assert tick_rows(url) == (471, 471)
    assert "stopped cleanly" in out.getvalue()


async def test_terminated_pool_connections_stop_nothing_and_lose_nothing(
    migrated_database: str, shared_data: Path
) -> None:
    out = io.StringIO()
    platform = Platform(replaying(migrated_database, shared_data), out, clock=ahead(60))
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    terminated = 0
    try:
        await until(lambda: stored_ticks(platform) > 0, "the first stored ticks")
        with psycopg.connect(migrated_database, autocommit=True) as admin:
            while platform.feed is None or not platform.feed.stats.finished:
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                terminated += int(killed[0]) if killed else 0
                assert not running.done()
                await asyncio.sleep(0.5)

        expected = await settled_to_clean_run(migrated_database, shared_data)
        assert not running.done()
    finally:
        stop.set()
        await asyncio.wait_for(running, WAIT)
    assert terminated > 5
    assert await stored(migrated_database) == expected
    assert tick_rows(migrated_database) == (471, 471)
    assert "stopped cleanly" in out.getvalue()
