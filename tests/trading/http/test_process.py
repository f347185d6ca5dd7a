"""The trading process's parts wired together (real PostgreSQL, the memory bus, the real
service): trades published on ``md.ticks`` as the feed publishes them fill an order placed
over HTTP, the positions over HTTP follow, and the stored events reach ``trading.events``; a
key revoked on ``auth.events`` is refused at once; a database outage that loses a fill stops
the process (``/readyz`` and ``/healthz`` 503 first), and its restart fills the order once."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from access.settings import TokenSettings
from core import trading_commands as tc
from core.auth_events import AuthEvent, encode_event
from core.ticks import Side, Tick, TickBatch
from core.topic_codecs import TICKS_CODEC, TRADING_COMMANDS_CODEC, codec_for
from core.topics import AUTH_EVENTS, TICKS, TRADING_EVENTS
from core.trading_events import OrderFilled, OrderSide, OrderType
from streams.bus import Topic
from streams.memory import MemoryBus
from streams.producer import send
from telemetry.readiness import READINESS
from tests.storage.stoppable import StoppablePostgres
from tests.support import tokens
from tests.trading.http.test_api import ALICE, ORDERS, limit_buy, trader
from tests.trading.http.test_command import funded
from tests.trading.service.scenario import XBT, settings
from trading.followers import OUTBOX_CHECK, PROJECTOR_CHECK
from trading.process import ProcessSettings, running
from trading.watch import ProcessFailed

FILLED_WITHIN_S = 10.0
FAILED_WITHIN_S = 30.0


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
        checks = READINESS.checks()  # the admin port's /readyz: both loops run, neither fails
        assert (checks[OUTBOX_CHECK], checks[PROJECTOR_CHECK]) == (None, None)
    assert OUTBOX_CHECK not in READINESS.checks()


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
        assert down.json()["checks"] == {"database": "store-unavailable", "service": "ok"}
        assert (await alice.get("/healthz")).status_code == 200  # an outage is no restart
        await asyncio.to_thread(stoppable_postgres.start)
        async with asyncio.timeout(30):  # the store's pool lends a fresh connection
            while (again := await alice.post(ORDERS, json=limit_buy("down"))).status_code == 503:
                await asyncio.sleep(0.2)
        assert again.status_code == 201, again.text  # it was never stored
        async with asyncio.timeout(30):  # the projector and the queries' pool ride it out
            while not _lists(await alice.get(ORDERS), 2):
                await asyncio.sleep(0.1)
        assert (await alice.get("/readyz")).status_code == 200  # ready again


async def _trade(ticks: Topic, trade_id: int, price: str, size: str) -> None:
    now = time.time_ns()
    tick = Tick(XBT, trade_id, Decimal(price), Decimal(size), Side.SELL, now, now)
    await ticks.publish(*TICKS_CODEC.record(TickBatch.from_ticks([tick])))


async def _status(alice: httpx.AsyncClient, order_url: str) -> str:
    status: str = (await alice.get(order_url)).json()["order"]["status"]
    return status


async def test_a_fill_lost_in_an_outage_stops_the_process_and_a_restart_fills_once(
    stoppable_postgres: StoppablePostgres,
) -> None:
    """The venue fills the order's second half while the database is down: the service is
    unsound, the watch says so on ``/readyz`` and ``/healthz`` (503) and stops the process,
    which ends with :class:`ProcessFailed`; restarted on the same bus, it resumes the order and
    the uncommitted trade comes again: two fills of 0.1, each stored once."""
    url = stoppable_postgres.database("mdp")
    await asyncio.to_thread(funded, url)
    process = ProcessSettings(
        url, TokenSettings(keys=tokens.keyset()), port=0, paper=settings(),
        store_connect_timeout_s=0.1,
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {trader(ALICE)}"}
    async with MemoryBus(topic_partitions={TICKS: 1}) as bus:
        orders: list[str] = []
        with pytest.raises(ProcessFailed, match="the venue is ahead of the store") as failed:
            await _fill_lost(process, bus, stoppable_postgres, orders)
        assert "after a failed filled" in str(failed.value)  # the step whose append failed
        await asyncio.to_thread(stoppable_postgres.start)
        async with (
            running(process, bus) as server,
            httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as alice,
        ):
            async with asyncio.timeout(FILLED_WITHIN_S):  # the trade not committed comes again
                while await _status(alice, orders[0]) != "filled":
                    await asyncio.sleep(0.05)
            audit = (await alice.get("/trading/v1/events", params={"limit": 1000})).json()
            filled = [item["event"] for item in audit["events"]
                      if item["event"]["kind"] == "order-filled"]  # fmt: skip
            assert [Decimal(event["quantity"]) for event in filled] == [Decimal("0.1")] * 2
            assert (await alice.get("/readyz")).json()["checks"]["service"] == "ok"


async def _fill_lost(
    process: ProcessSettings, bus: MemoryBus, postgres: StoppablePostgres, orders: list[str]
) -> None:
    """Run the process until an order is half filled, stop the database, trade the rest: the
    process stops by itself (its ``stop`` is set), answering 503 meanwhile. The order's URL
    goes into ``orders``."""
    stop, ticks = asyncio.Event(), bus.topic(TICKS)
    headers = {"Authorization": f"Bearer {trader(ALICE)}"}
    async with (
        running(process, bus, stop=stop) as server,
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as alice,
    ):
        placed = await alice.post(ORDERS, json=limit_buy("half", quantity="0.2"))
        assert placed.status_code == 201, placed.text
        orders.append(order_url := f"{ORDERS}/{placed.json()['order']['order_id']}")
        trade_id = 0
        async with asyncio.timeout(FILLED_WITHIN_S):  # the consumer joins at the newest trade
            while await _status(alice, order_url) != "partially-filled":
                trade_id += 1
                await _trade(ticks, trade_id, "48900", "0.1")  # each fills 0.1
                await asyncio.sleep(0.05)
        assert (await alice.get("/readyz")).status_code == 200
        await asyncio.to_thread(postgres.stop)
        await _trade(ticks, trade_id + 1, "48900", "0.1")  # fills the rest: not stored
        async with asyncio.timeout(FAILED_WITHIN_S):
            await stop.wait()
        ready = await alice.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["service"] == "restart-required"
        alive = await alice.get("/healthz")
        assert alive.status_code == 503
        assert alive.json()["checks"] == {"service": "restart-required"}
        refused = await alice.post(ORDERS, json=limit_buy("after"))
        assert (refused.status_code, refused.json()["code"]) == (503, "restart-required")


async def test_the_commands_consumer_rides_out_an_outage_that_leaves_the_service_sound(
    stoppable_postgres: StoppablePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    """A command that fails before the venue acted (the database is down) leaves the service
    sound: the consumer says so and subscribes again with backoff, the process keeps serving
    (``service`` ok), and once the database is back the command is applied, once."""
    url = stoppable_postgres.database("mdp")
    await asyncio.to_thread(funded, url)
    process = ProcessSettings(
        url, TokenSettings(keys=tokens.keyset()), port=0, store_connect_timeout_s=0.1
    )
    headers = {"Authorization": f"Bearer {trader(ALICE)}"}
    stop = asyncio.Event()
    async with (
        MemoryBus() as bus,
        running(process, bus, stop=stop) as server,
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as alice,
    ):
        await asyncio.to_thread(stoppable_postgres.stop)
        await send(bus, TRADING_COMMANDS_CODEC, [_command_buy("bot-outage")])
        async with asyncio.timeout(FAILED_WITHIN_S):
            while not any("trading.commands: the event store" in r.getMessage()
                          for r in caplog.records):  # fmt: skip
                await asyncio.sleep(0.05)
        assert not stop.is_set()
        assert (await alice.get("/readyz")).json()["checks"]["service"] == "ok"
        await asyncio.to_thread(stoppable_postgres.start)
        async with asyncio.timeout(FAILED_WITHIN_S):  # the round comes again, and is stored
            while not (submitted := await _submitted(alice, "bot-outage")):
                await asyncio.sleep(0.1)
        await send(bus, TRADING_COMMANDS_CODEC, [_command_buy("bot-after")])
        async with asyncio.timeout(FILLED_WITHIN_S):
            while not await _submitted(alice, "bot-after"):
                await asyncio.sleep(0.05)
        assert await _submitted(alice, "bot-outage") == submitted == 1  # once
        assert not stop.is_set()


def _command_buy(client_order_id: str) -> tc.PlaceOrder:
    return tc.PlaceOrder(
        account=ALICE, client_order_id=client_order_id, instrument=XBT, side=OrderSide.BUY,
        type=OrderType.LIMIT, quantity=Decimal("0.1"), price=Decimal(48000),
    )  # fmt: skip


async def _submitted(alice: httpx.AsyncClient, client_order_id: str) -> int:
    """How many orders of ``client_order_id`` the event store holds (0 while it is down)."""
    answer = await alice.get("/trading/v1/events", params={"limit": 1000})
    if answer.status_code == 503:
        return 0
    events = [item["event"] for item in answer.json()["events"]]
    return sum(1 for event in events if event["kind"] == "order-submitted"
               and event["client_order_id"] == client_order_id)  # fmt: skip


def _lists(answer: httpx.Response, count: int) -> bool:
    """Whether ``answer`` is the list of ``count`` orders (a 503 while the queries' pool finds
    the database back is not yet)."""
    if answer.status_code == 503:
        return False
    assert answer.status_code == 200, answer.text
    return len(answer.json()["orders"]) == count
