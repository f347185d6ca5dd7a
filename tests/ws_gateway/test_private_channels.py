"""The private channels end to end: the real trading process (service, paper venue fed by
trades on ``md.ticks``, its outbox publishing on ``trading.events``, its projector) on a real
PostgreSQL, the gateway reading its read models through ``AccountSnapshots``, and clients over
real WebSockets with the auth service's access tokens."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from access.jwks import JwksCache
from core.ticks import Side, Tick, TickBatch
from core.topic_codecs import TICKS_CODEC
from core.topics import TICKS
from streams.memory import MemoryBus
from tests.storage.stoppable import StoppablePostgres
from tests.support import tokens
from tests.trading.http.test_api import ALICE, BOB, ORDERS, limit_buy, trader
from tests.trading.http.test_command import funded
from tests.trading.service.scenario import XBT, settings
from trading.process import ProcessSettings, running
from trading.readmodels.snapshots import AccountSnapshots
from web.tokens import TokenSettings
from ws_gateway import Gateway
from ws_gateway.tokens import AccessTokens

from .harness import TIMEOUT, client, recv, request
from .harness import running as gateway_running

FILLED_WITHIN_S = 15.0
PRIVATE = ("orders", "fills", "positions")


async def subscribed(ws: ClientConnection, kind: str, rid: int) -> dict[str, Any]:
    """Subscribe to ``kind``; its snapshot (after checking the ``subscribed`` answer)."""
    await request(ws, op="subscribe", id=rid, channel=kind)
    answer = await next_message(ws)
    assert (answer["type"], answer["channel"]) == ("subscribed", kind), answer
    snapshot = await next_message(ws)
    assert (snapshot["type"], snapshot["channel"]) == ("snapshot", kind), snapshot
    return snapshot


async def next_message(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    while True:
        message = await recv(ws, timeout)
        if message["type"] != "heartbeat":
            return message


@contextlib.asynccontextmanager
async def connected(gateway: Gateway, token: str) -> AsyncIterator[ClientConnection]:
    async with client(gateway, f"/ws?token={token}") as ws:
        yield ws


async def test_an_order_placed_and_filled_reaches_only_its_accounts_private_channels(
    fresh_database: str,
) -> None:
    schema = await asyncio.to_thread(funded, fresh_database)
    read_schema = f"{schema}_read"
    process = ProcessSettings(
        fresh_database, TokenSettings(keys=tokens.keyset()), port=0, schema=read_schema,
        paper=settings(),
    )  # fmt: skip
    checks = AccessTokens(JwksCache.fixed(tokens.keyset()), None)
    headers = {"Authorization": f"Bearer {trader(ALICE)}"}
    read_only = tokens.issue(account_id=ALICE, principal=ALICE, scopes=("read",))
    async with (
        MemoryBus() as bus,
        running(process, bus) as server,
        AccountSnapshots.open(fresh_database, read_schema) as reads,
        gateway_running(authenticator=checks, bus=bus, reads=reads, instruments=(XBT,)) as (
            _,
            gateway,
        ),
        httpx.AsyncClient(base_url=server.url, headers=headers) as alice_http,
        connected(gateway, trader(ALICE)) as alice,
        connected(gateway, trader(BOB)) as bob,
        connected(gateway, read_only) as reader,
    ):
        snapshots = {kind: await subscribed(alice, kind, rid) for rid, kind in enumerate(PRIVATE)}
        assert {kind: s[kind] for kind, s in snapshots.items()} == {k: [] for k in PRIVATE}
        assert {s["account"] for s in snapshots.values()} == {ALICE}
        for rid, kind in enumerate(PRIVATE):
            await subscribed(bob, kind, rid)
        for kind in PRIVATE:
            await request(reader, op="subscribe", id=9, channel=kind)
            refused = await next_message(reader)
            assert (refused["type"], refused["code"], refused["field"], refused["id"]) == (
                "error", "not_entitled", "channel", 9
            )  # fmt: skip

        placed = await alice_http.post(
            ORDERS, json=limit_buy("ws-1", price="49000", quantity="0.3")
        )
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order"]["order_id"]
        ticks = bus.topic(TICKS)
        received: list[dict[str, Any]] = []
        filled = Decimal(0)
        deadline = time.monotonic() + FILLED_WITHIN_S
        trade_id = 0
        while filled < Decimal("0.3"):
            assert time.monotonic() < deadline, f"only {filled} filled: {received}"
            trade_id += 1
            now = time.time_ns()
            tick = Tick(XBT, trade_id, Decimal("48900"), Decimal("0.1"), Side.SELL, now, now)
            await ticks.publish(*TICKS_CODEC.record(TickBatch.from_ticks([tick])))
            with contextlib.suppress(TimeoutError):
                while True:
                    message = await next_message(alice, 0.2)
                    received.append(message)
                    if message["type"] == "fill":
                        filled += Decimal(message["fill"]["quantity"])
        async with asyncio.timeout(TIMEOUT):  # the position after the last fill
            while sum(m["type"] == "position" for m in received) < 3:
                received.append(await next_message(alice))

        for kind in PRIVATE:  # each channel numbered 1, 2, 3... after its snapshot's seq
            seqs = [m["seq"] for m in received if m["channel"] == kind]
            start = snapshots[kind]["seq"]
            assert seqs == list(range(start + 1, start + 1 + len(seqs))), (kind, seqs)
        events = [m["event"] for m in received if m["type"] == "order"]
        assert {e["order_id"] for e in events} == {order_id}
        kinds = [e["kind"] for e in events]
        assert kinds[:2] == ["order-submitted", "order-accepted"]
        assert kinds.count("order-filled") == 3
        fills = [m["fill"] for m in received if m["type"] == "fill"]
        positions = [m["position"] for m in received if m["type"] == "position"]
        assert len(fills) == len(positions) == 3
        total = sum(Decimal(f["quantity"]) for f in fills)
        assert total == Decimal("0.3")
        assert Decimal(positions[-1]["quantity"]) == total
        assert positions[-1]["instrument"] == XBT

        async with asyncio.timeout(TIMEOUT):  # the REST views: one presentation
            while True:
                rest_fills = (await alice_http.get("/trading/v1/fills")).json()["fills"]
                if len(rest_fills) == 3:
                    break
                await asyncio.sleep(0.05)
        assert [item["fill"] for item in rest_fills] == fills
        rest_positions = (await alice_http.get("/trading/v1/positions")).json()["positions"]
        assert [item["position"] for item in rest_positions] == [positions[-1]]
        rest_order = (await alice_http.get(f"{ORDERS}/{order_id}")).json()["order"]

        # a new subscriber gets the same state as a snapshot
        again = await subscribed(bob, "orders", 7)  # bob's own: still nothing
        assert again["orders"] == []
        async with connected(gateway, trader(ALICE)) as late:
            late_orders = await subscribed(late, "orders", 1)
            late_fills = await subscribed(late, "fills", 2)
            late_positions = await subscribed(late, "positions", 3)
        assert late_orders["orders"] == [rest_order]
        assert late_fills["fills"] == fills
        assert late_positions["positions"] == [positions[-1]]

        with contextlib.suppress(TimeoutError):  # bob heard nothing of alice's
            while True:
                message = await next_message(bob, 0.3)
                raise AssertionError(f"bob was sent {message}")


async def test_while_the_trading_database_is_down_a_subscribe_is_unavailable_and_the_session_stays(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database("mdp")
    await asyncio.to_thread(funded, url)
    process = ProcessSettings(url, TokenSettings(keys=tokens.keyset()), port=0)
    checks = AccessTokens(JwksCache.fixed(tokens.keyset()), None)
    async with (
        MemoryBus() as bus,
        running(process, bus),
        AccountSnapshots.open(url) as reads,
        gateway_running(authenticator=checks, bus=bus, reads=reads, instruments=(XBT,)) as (
            _,
            gateway,
        ),
        connected(gateway, trader(ALICE)) as alice,
    ):
        before = await subscribed(alice, "positions", 1)
        assert before["positions"] == []
        await asyncio.to_thread(stoppable_postgres.stop)
        await request(alice, op="subscribe", id=2, channel="fills")
        refused = await next_message(alice, 3 * TIMEOUT)
        assert (refused["type"], refused["code"], refused["field"], refused["id"]) == (
            "error", "unavailable", "channel", 2
        )  # fmt: skip
        await request(alice, op="ping", id=3)
        assert await next_message(alice) == {"type": "pong", "id": 3}
        await asyncio.to_thread(stoppable_postgres.start)
        async with asyncio.timeout(30):
            while True:
                await request(alice, op="subscribe", id=4, channel="fills")
                answer = await next_message(alice, 3 * TIMEOUT)
                if answer["type"] == "subscribed":
                    break
                assert answer["code"] == "unavailable", answer
                await asyncio.sleep(0.2)
        snapshot = await next_message(alice)
        assert (snapshot["type"], snapshot["fills"]) == ("snapshot", [])
