"""The gateway's ``/healthz`` and ``/readyz``, plain HTTP on its port in the shape every
service shares (``web.health``): ready while its feed loop reads the bus, 503 once that loop
has finished no round for ``READY_STALE_S``, ready again when it reads again."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from streams.bus import Record
from streams.memory.bus import MemorySubscription
from ws_gateway.server import NS_PER_S, READY_STALE_S

from .harness import TIMEOUT, running


async def ready_answer(http: httpx.AsyncClient, port: int) -> httpx.Response:
    return await http.get(f"http://127.0.0.1:{port}/readyz")


async def test_health_and_readiness_answer_json() -> None:
    async with running() as (_, gateway), httpx.AsyncClient(timeout=TIMEOUT) as http:
        alive = await http.get(f"http://127.0.0.1:{gateway.port}/healthz")
        assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
        assert alive.headers["content-type"] == "application/json"
        assert alive.headers["cache-control"] == "no-store"
        async with asyncio.timeout(TIMEOUT):
            while (ready := await ready_answer(http, gateway.port)).status_code != 200:
                await asyncio.sleep(0.05)
        assert ready.json() == {"status": "ready", "checks": {"feed": "ok"}}


async def test_readiness_is_503_while_the_bus_does_not_answer_and_200_when_it_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [time.time_ns()]
    bus_answers = asyncio.Event()
    bus_answers.set()
    poll = MemorySubscription.poll

    async def gated(
        self: MemorySubscription, max_records: int = 500, timeout: float = 1.0
    ) -> list[Record]:
        await bus_answers.wait()
        return await poll(self, max_records, timeout)

    monkeypatch.setattr(MemorySubscription, "poll", gated)
    async with (
        running(clock=lambda: now[0]) as (_, gateway),
        httpx.AsyncClient(timeout=TIMEOUT) as http,
    ):
        async with asyncio.timeout(TIMEOUT):
            while (await ready_answer(http, gateway.port)).status_code != 200:
                await asyncio.sleep(0.05)
        bus_answers.clear()  # the bus stops answering; the loop waits in its poll
        await asyncio.sleep(0.5)  # the round under way ends
        now[0] += round((READY_STALE_S + 1) * NS_PER_S)
        down = await ready_answer(http, gateway.port)
        assert down.status_code == 503
        assert down.json() == {
            "status": "unavailable",
            "detail": "feed stalled",
            "checks": {"feed": "stalled"},
        }
        assert down.headers["retry-after"] == "5"
        alive = await http.get(f"http://127.0.0.1:{gateway.port}/healthz")
        assert alive.status_code == 200  # alive all the same
        bus_answers.set()
        async with asyncio.timeout(TIMEOUT):
            while (await ready_answer(http, gateway.port)).status_code != 200:
                await asyncio.sleep(0.05)
