"""Who may connect: browser origins and the cap per client address, with real clients."""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from ws_gateway import Gateway, GatewaySettings
from ws_gateway.admission import AddressSlots, check_origin, origin_matchers, page_origins

from .harness import TIMEOUT, client, recv_type, request, running


async def refused(gateway: Gateway, origin: str | None = None) -> InvalidStatus:
    """The HTTP refusal of a handshake that must fail."""
    url = f"ws://127.0.0.1:{gateway.port}/ws"
    opening = connect(url, origin=Origin(origin) if origin else None, open_timeout=TIMEOUT)
    with pytest.raises(InvalidStatus) as refusal:
        await asyncio.wait_for(opening, TIMEOUT)
    return refusal.value


async def answers(ws: ClientConnection, rid: int) -> None:
    await request(ws, op="ping", id=rid)
    assert await recv_type(ws, "pong") == {"type": "pong", "id": rid}


async def test_a_foreign_origin_is_refused_with_403_and_an_allowed_one_is_served() -> None:
    origins = ("https://charts.example.com", "http://127.0.0.1:*")
    async with running(allowed_origins=origins) as (_, gateway):
        for foreign in ("https://evil.example", "https://charts.example.com.evil.example"):
            assert (await refused(gateway, origin=foreign)).response.status_code == 403
        for origin in ("https://charts.example.com", "http://127.0.0.1:8000", "http://127.0.0.1"):
            async with client(gateway, origin=origin) as ws:
                await answers(ws, 1)
        async with client(gateway) as bot:  # no Origin: no browser, always let through
            await answers(bot, 2)


async def test_by_default_only_pages_on_this_machine_may_connect() -> None:
    async with running() as (_, gateway):
        assert (await refused(gateway, origin="https://evil.example")).response.status_code == 403
        async with client(gateway, origin="http://localhost:5173") as ws:
            await answers(ws, 1)


async def test_any_origin_when_configured_so() -> None:
    async with (
        running(allowed_origins=("*",)) as (_, gateway),
        client(gateway, origin="https://anywhere.example") as ws,
    ):
        await answers(ws, 1)


async def test_the_connection_beyond_the_cap_of_one_address_is_refused_with_429() -> None:
    cap = 3
    async with running(max_connections_per_address=cap) as (_, gateway):
        async with contextlib.AsyncExitStack() as stack:
            held = [await stack.enter_async_context(client(gateway)) for _ in range(cap)]
            refusal = await refused(gateway)
            assert refusal.response.status_code == 429
            assert (
                f"too many connections from 127.0.0.1: at most {cap}"
                in (refusal.response.body or b"").decode()
            )
            for rid, ws in enumerate(held):  # the others from that address keep working
                await answers(ws, rid)
            await held[0].close()
            await until_held(gateway, cap - 1)
            async with client(gateway) as again:  # a freed slot is usable again
                await answers(again, 9)
        assert gateway.stats.crowded == 1


async def test_refused_handshakes_give_their_slot_back() -> None:
    async with running(max_connections_per_address=1, allowed_origins=()) as (_, gateway):
        for _ in range(3):
            await refused(gateway, origin="https://evil.example")
        await until_held(gateway, 0)
        async with client(gateway) as ws:
            await answers(ws, 1)


async def until_held(gateway: Gateway, count: int) -> None:
    async with asyncio.timeout(TIMEOUT):
        while gateway._slots.held("127.0.0.1") != count:
            await asyncio.sleep(0.01)


def test_origin_settings_are_checked_and_become_matchers() -> None:
    assert origin_matchers(["*"]) is None
    matchers = origin_matchers(["https://a.example", "http://localhost:*"])
    assert matchers is not None
    assert matchers[:2] == [None, "https://a.example"]
    pattern = matchers[2]
    assert isinstance(pattern, re.Pattern)
    assert pattern.fullmatch("http://localhost:8000")
    assert pattern.fullmatch("http://localhost")
    assert not pattern.fullmatch("http://localhost.evil.example")
    assert not pattern.fullmatch("http://localhost:8000.evil.example")
    for bad in ("localhost:8000", "ftp://x", "https://a.example/page", "https://"):
        with pytest.raises(ValueError, match="is not scheme://host"):
            check_origin(bad)
    with pytest.raises(ValueError, match="is not scheme://host"):
        GatewaySettings(allowed_origins=("evil.example",))


def test_page_origins_name_the_chart_as_browsers_on_this_machine_do() -> None:
    assert page_origins("127.0.0.1", 8000) == (
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000",
    )
    assert page_origins("0.0.0.0", 0)[0] == "http://127.0.0.1:*"
    assert page_origins("10.1.2.3", 80)[-1] == "http://10.1.2.3:80"
    assert page_origins("::", 80) == page_origins("127.0.0.1", 80)


def test_address_slots() -> None:
    slots = AddressSlots(2)
    assert slots.take("a")
    assert slots.take("a")
    assert not slots.take("a")
    assert slots.take("b")
    slots.give_back("a")
    assert slots.take("a")
    uncapped = AddressSlots(0)
    assert all(uncapped.take("a") for _ in range(1000))
    with pytest.raises(ValueError, match="must not be negative"):
        AddressSlots(-1)
