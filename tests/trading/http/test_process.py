"""The trading process's parts wired together (real PostgreSQL, the memory bus, the real
service): trades published on ``md.ticks`` as the feed publishes them fill an order placed
over HTTP, the positions over HTTP follow, and the stored events reach ``trading.events``; a
key revoked on ``auth.events`` is refused at once."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx

from access.settings import TokenSettings
from core.auth_events import AuthEvent, encode_event
from core.ticks import Side, Tick, TickBatch
from core.topic_codecs import TICKS_CODEC, codec_for
from core.topics import AUTH_EVENTS, TICKS, TRADING_EVENTS
from core.trading_events import OrderFilled
from streams.memory import MemoryBus
from tests.storage.stoppable import StoppablePostgres
from tests.support import tokens
from tests.trading.http.test_api import ALICE, ORDERS, limit_buy, trader
from tests.trading.http.test_command import funded
from tests.trading.service.scenario import XBT, settings
from trading.process import ProcessSettings, running

FILLED_WITHIN_S = 10.0


async def funded_process(database_url: str) -> ProcessSettings:
    """The trading process's settings on a database where ALICE's account is funded, with
    the paper venue of the service scenarios."""
    schema = await asyncio.to_thread(funded, database_url)
    return ProcessSettings(
        database_url, TokenSettings(keys=tokens.keyset()), port=0, schema=f"{schema}_read",
        paper=settings(),
    )  # fmt: skip


async def test_ticks_on_the_bus_fill_an_order_placed_over_http(fresh_database: str) -> None:
    process = await funded_process(fresh_database)
    headers = {"Authorization": f"Bearer {trader(ALICE)}"}
    async with (
        MemoryBus() as bus,
        running(process, bus) as server,
        httpx.AsyncClient(base_url=server.url, headers=headers) as alice,
    ):
        ticks = bus.topic(TICKS)
        trade_id = 0

        async def trade(price: str, size: str) -> None:
            nonlocal trade_id
            trade_id += 1
            now = time.time_ns()
            tick = Tick(XBT, trade_id, Decimal(price), Decimal(size), Side.SELL, now, now)
            await ticks.publish(*TICKS_CODEC.record(TickBatch.from_ticks([tick])))

        placed = await alice.post(ORDERS, json=limit_buy("bus-1", price="49000", quantity="0.3"))
        assert placed.status_code == 201, placed.text
        order_url = f"{ORDERS}/{placed.json()['order']['order_id']}"
        deadline = time.monotonic() + FILLED_WITHIN_S
        status = "accepted"
        while status != "filled":  # the consumer joins from the newest trade: trade until filled
            assert time.monotonic() < deadline, f"not filled from the ticks on the bus: {status}"
            await trade("48900", "0.1")  # each fills at most 0.1
            await asyncio.sleep(0.05)
            status = (await alice.get(order_url)).json()["order"]["status"]
        fills: list[dict[str, Any]] = []
        while sum(Decimal(item["fill"]["quantity"]) for item in fills) != Decimal("0.3"):
            assert time.monotonic() < deadline, "the read models did not follow the fills"
            await asyncio.sleep(0.05)
            fills = (await alice.get("/trading/v1/fills")).json()["fills"]
        assert len(fills) == 3
        positions = (await alice.get("/trading/v1/positions")).json()["positions"]
        assert Decimal(positions[0]["position"]["quantity"]) == Decimal("0.3")
        async with bus.subscribe("check", [TRADING_EVENTS], start="earliest") as subscription:
            records = await subscription.poll(10_000, timeout=1.0)
        published = [codec_for(TRADING_EVENTS).decode(record.value) for record in records]
        filled = [m for m in published if isinstance(getattr(m, "event", m), OrderFilled)]
        assert len(filled) == len(fills)


async def test_a_key_revoked_on_auth_events_is_refused_at_once(fresh_database: str) -> None:
    schema = await asyncio.to_thread(funded, fresh_database)
    process = ProcessSettings(
        fresh_database, TokenSettings(keys=tokens.keyset()), port=0, schema=f"{schema}_read"
    )
    revoked, other = (tokens.key_token(key, account_id=ALICE) for key in ("k_revoked", "k_other"))
    async with MemoryBus() as bus, running(process, bus) as server, httpx.AsyncClient() as client:

        async def status(token: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            return await client.get(f"{server.url}{ORDERS}", headers=headers)

        assert [(await status(token)).status_code for token in (revoked, other)] == [200, 200]
        now = int(time.time())
        event = AuthEvent(id=1, kind="key-revoked", subject="key:k_revoked", account_id=ALICE,
                          plan=None, reason="", at=now, until=now + 330)  # fmt: skip
        await bus.topic(AUTH_EVENTS).publish(event.key(), encode_event(event))
        async with asyncio.timeout(5):
            while (answer := await status(revoked)).status_code != 401:
                await asyncio.sleep(0.02)
        assert answer.json()["reason"] == "revoked"
        assert (await status(other)).status_code == 200


async def test_while_the_database_is_down_the_api_answers_503_then_recovers(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database("mdp")
    await asyncio.to_thread(funded, url)
    process = ProcessSettings(url, TokenSettings(keys=tokens.keyset()), port=0)
    headers = {"Authorization": f"Bearer {trader(ALICE)}"}
    async with (
        MemoryBus() as bus,
        running(process, bus) as server,
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as alice,
    ):
        assert (await alice.post(ORDERS, json=limit_buy("before"))).status_code == 201
        await asyncio.to_thread(stoppable_postgres.stop)
        for answer in (await alice.get(ORDERS), await alice.post(ORDERS, json=limit_buy("down"))):
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "store-unavailable"
            assert answer.headers["retry-after"] == "5"
        down = await alice.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"] == {"database": "store-unavailable"}
        await asyncio.to_thread(stoppable_postgres.start)
        async with asyncio.timeout(30):  # the store's pool lends a fresh connection
            while (again := await alice.post(ORDERS, json=limit_buy("down"))).status_code == 503:
                await asyncio.sleep(0.2)
        assert again.status_code == 201, again.text  # it was never stored
        async with asyncio.timeout(30):  # the projector and the queries' pool ride it out
            while not _lists(await alice.get(ORDERS), 2):
                await asyncio.sleep(0.1)
        assert (await alice.get("/readyz")).status_code == 200  # ready again


def _lists(answer: httpx.Response, count: int) -> bool:
    """Whether ``answer`` is the list of ``count`` orders (a 503 while the queries' pool finds
    the database back is not yet)."""
    if answer.status_code == 503:
        return False
    assert answer.status_code == 200, answer.text
    return len(answer.json()["orders"]) == count
