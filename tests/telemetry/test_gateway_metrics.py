"""The gateway's metrics: clients and subscriptions read from the running gateway at scrape
time, closes counted by their code whoever closed, conflations as a lagging client loses
updates."""

from __future__ import annotations

import asyncio

from tests.telemetry.values import value
from tests.ws_gateway.harness import TIMEOUT, client, close_frame, running, subscribe
from tests.ws_gateway.market import updates
from tests.ws_gateway.test_hub import deliveries, messages
from ws_gateway.outbox import Outbox


async def eventually(name: str, expected: float, **labels: str) -> None:
    """The gateway counts a close once the connection has ended on its side too."""
    async with asyncio.timeout(TIMEOUT):
        while value(name, **labels) != expected:
            await asyncio.sleep(0.01)


async def test_clients_and_subscriptions_are_read_from_the_running_gateway() -> None:
    async with running() as (_, gateway):
        assert value("mdp_gateway_clients") == 0
        async with client(gateway) as one, client(gateway) as two:
            await subscribe(one)
            await subscribe(two)
            await subscribe(two, interval="1m")
            assert value("mdp_gateway_clients") == 2
            assert value("mdp_gateway_subscriptions") == 3
            assert value("mdp_gateway_send_queue_depth") == 0
            assert value("mdp_gateway_lagging_clients") == 0
        await eventually("mdp_gateway_clients", 0)
        assert value("mdp_gateway_subscriptions") == 0
    # a stopped gateway is no longer read
    assert value("mdp_gateway_clients") == 0


async def test_a_closed_websocket_counts_its_close_code() -> None:
    normal, too_big = (
        value("mdp_gateway_closes_total", code="1000"),
        value("mdp_gateway_closes_total", code="1009"),
    )
    async with running() as (_, gateway):
        async with client(gateway):
            pass  # the client closes: 1000
        await eventually("mdp_gateway_closes_total", normal + 1, code="1000")
        async with client(gateway) as ws:  # the gateway closes: 1009, a frame too large
            await asyncio.wait_for(ws.send("x" * 100_000), TIMEOUT)
            assert (await close_frame(ws)).code == 1009
        await eventually("mdp_gateway_closes_total", too_big + 1, code="1009")
    assert value("mdp_gateway_closes_total", code="1000") == normal + 1


def test_a_lagging_client_counts_the_candle_updates_it_lost() -> None:
    _, sent = deliveries(updates())
    before = value("mdp_gateway_conflations_total")
    outbox = Outbox(lambda payload: payload + b"\n")
    outbox.defer(sent[:60], now=1.0)
    (notice,) = [m for m in messages(outbox.take()) if m["type"] == "conflated"]
    assert notice["dropped"] > 0
    assert value("mdp_gateway_conflations_total") - before == notice["dropped"]
