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


async def test_handshakes_still_being_sent_hold_their_slots() -> None:
    """The cap was taken only once the whole HTTP request had arrived, so clients slow to send
    it held no slot: any number of them could wait on one address."""
    cap = 3
    async with running(max_connections_per_address=cap) as (_, gateway):
        half_sent = []
        for _ in range(cap):
            _, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            writer.write(b"GET /ws HTTP/1.1\r\nHost: gateway.test\r\n")
            await writer.drain()
            half_sent.append(writer)
        try:
            await until_held(gateway, cap)
            refusal = await refused(gateway)
            assert refusal.response.status_code == 429
            assert f"at most {cap} at once" in (refusal.response.body or b"").decode()
        finally:
            for writer in half_sent:
                writer.close()
        await until_held(gateway, 0)
        async with client(gateway) as ws:  # their slots are free again
            await answers(ws, 1)
        assert gateway.stats.crowded == 1


async def until_held(gateway: Gateway, count: int) -> None:
    async with asyncio.timeout(TIMEOUT):
        while gateway.connections_from("127.0.0.1") != count:
            await asyncio.sleep(0.01)


def test_origin_settings_are_checked_and_become_matchers() -> None:
    assert origin_matchers(["*"]) is None
    matchers = origin_matchers(["https://a.example", "http://localhost:*"])
    assert matchers is not None
    assert matchers[0] is None  # no Origin: no browser
    exact, any_port = matchers[1:]
    assert isinstance(exact, re.Pattern)
    assert isinstance(any_port, re.Pattern)
    for same in ("https://a.example", "https://a.example:443", "HTTPS://A.Example"):
        assert exact.fullmatch(same), same
    for other in ("http://a.example", "https://a.example:8443", "https://a.example.evil"):
        assert not exact.fullmatch(other), other
    assert any_port.fullmatch("http://localhost:8000")
    assert any_port.fullmatch("http://LocalHost")
    assert not any_port.fullmatch("http://localhost.evil.example")
    assert not any_port.fullmatch("http://localhost:8000.evil.example")
    for bad in ("localhost:8000", "ftp://x", "https://a.example/page", "https://"):
        with pytest.raises(ValueError, match="is not scheme://host"):
            check_origin(bad)
    with pytest.raises(ValueError, match="is not scheme://host"):
        GatewaySettings(allowed_origins=("evil.example",))


async def test_origins_match_as_browsers_send_them() -> None:
    """The chart's own page on port 80 was allowed as ``http://host:80``, which no browser
    sends; and an origin's scheme and host are compared regardless of case."""
    origins = (*page_origins("10.1.2.3", 80), "https://Charts.Example.com:443")
    async with running(allowed_origins=origins) as (_, gateway):
        for origin in ("http://10.1.2.3", "https://charts.example.com", "HTTP://LOCALHOST"):
            async with client(gateway, origin=origin) as ws:
                await answers(ws, 1)
        assert (await refused(gateway, origin="http://10.1.2.3:8080")).response.status_code == 403


def test_page_origins_name_the_chart_as_browsers_on_this_machine_do() -> None:
    assert page_origins("127.0.0.1", 8000) == (
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000",
    )
    assert page_origins("0.0.0.0", 0)[0] == "http://127.0.0.1:*"
    assert page_origins("10.1.2.3", 80)[-1] == "http://10.1.2.3"  # browsers omit the default port
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
