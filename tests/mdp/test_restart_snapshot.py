"""``mdp up`` started again on a database that holds candles: a new ``subscribe`` gets the
newest stored candles, however old, as the history API has them (a real PostgreSQL, a real
``websockets`` client)."""

from __future__ import annotations

import asyncio
import io
import json
import time

from websockets.asyncio.client import connect

from core.engine import EngineConfig
from core.intervals import parse_intervals
from core.secrets import DatabaseUrl
from mdp.embedded import FeedSettings, Platform, PlatformSettings
from storage import PostgresStore
from tests.ws_gateway.market import ETH, final, updates

WAIT = 30.0


async def test_a_subscribe_after_a_restart_gets_the_stored_candles(migrated_database: str) -> None:
    # An earlier run stored an hour of ETH's 1m candles, eleven months ago.
    stored = final(updates(ETH, "1m", duration=3600))
    async with PostgresStore.open(migrated_database) as store:
        await store.write(candles=list(stored.values()))
    settings = PlatformSettings(
        database_url=DatabaseUrl(migrated_database),
        feed=FeedSettings(instruments=("SYNTH:BTCUSD",), history=0.0),
        engine=EngineConfig(intervals=parse_intervals(["1m"])),
        http_port=0,
        ws_port=0,
    )
    platform = Platform(settings, io.StringIO())
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    try:
        deadline = time.monotonic() + WAIT
        while platform.gateway_url is None or platform.feed is None:
            assert not running.done(), running.exception()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        async with asyncio.timeout(WAIT), connect(platform.gateway_url) as ws:
            request = {"op": "subscribe", "id": 1, "channel": "candles", "interval": "1m"}
            await ws.send(json.dumps(request | {"instrument": ETH.lower(), "snapshot": 40}))
            while (message := json.loads(await ws.recv()))["type"] != "snapshot":
                assert message["type"] in ("subscribed", "heartbeat"), message
    finally:
        stop.set()
        await asyncio.wait_for(running, WAIT)
    assert message["instrument"] == ETH
    newest = [stored[t] for t in sorted(stored)[-40:]]
    assert [c["open_time"] for c in message["candles"]] == [c.open_time // 10**6 for c in newest]
    assert [c["close"] for c in message["candles"]] == [str(c.close) for c in newest]
