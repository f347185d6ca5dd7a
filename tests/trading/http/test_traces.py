"""An order's trace: its POST, the saga's steps it runs, and the fills a trade on the bus
brings later are one trace (the trading process's parts wired together: real PostgreSQL,
the memory bus)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import httpx

from core.ticks import Side, Tick, TickBatch
from core.topic_codecs import TICKS_CODEC
from core.topics import TICKS
from streams.memory import MemoryBus
from tests.telemetry.traces import traced
from tests.trading.http.test_api import ALICE, ORDERS, limit_buy, trader
from tests.trading.http.test_process import funded_process
from tests.trading.service.scenario import XBT
from trading.process import running

FILLED_WITHIN_S = 10.0


async def test_an_orders_post_its_saga_steps_and_its_fills_are_one_trace(
    fresh_database: str,
) -> None:
    process = await funded_process(fresh_database)
    headers = {"Authorization": f"Bearer {trader(ALICE)}"}
    with traced(1.0) as exporter:
        async with (
            MemoryBus() as bus,
            running(process, bus) as server,
            httpx.AsyncClient(base_url=server.url, headers=headers) as alice,
        ):
            placed = await alice.post(
                ORDERS, json=limit_buy("trace-1", price="49000", quantity="0.2")
            )
            assert placed.status_code == 201, placed.text
            order_url = f"{ORDERS}/{placed.json()['order']['order_id']}"
            deadline = time.monotonic() + FILLED_WITHIN_S
            status, trade_id = "accepted", 0
            while status != "filled":  # the consumer joins from the newest trade
                assert time.monotonic() < deadline, f"not filled: {status}"
                trade_id += 1
                now = time.time_ns()
                tick = Tick(XBT, trade_id, Decimal("48900"), Decimal("0.1"), Side.SELL, now, now)
                await bus.topic(TICKS).publish(*TICKS_CODEC.record(TickBatch.from_ticks([tick])))
                await asyncio.sleep(0.05)
                status = (await alice.get(order_url)).json()["order"]["status"]
    spans = exporter.get_finished_spans()
    (post,) = [s for s in spans if s.name == f"POST {ORDERS}"]
    assert post.context is not None
    in_trace = [s for s in spans if s.context and s.context.trace_id == post.context.trace_id]
    names = [s.name for s in in_trace]
    assert "trading.placed" in names  # the saga's first append, inside the POST
    fills = [s for s in in_trace if s.name == "trading.fill"]
    assert len(fills) == 2  # 0.1 and 0.1
    for fill in fills:
        assert fill.parent is not None
        assert fill.parent.span_id == post.context.span_id
    filled_steps = [s for s in in_trace if s.name == "trading.filled"]
    assert {s.parent.span_id for s in filled_steps if s.parent} <= {
        f.context.span_id for f in fills if f.context
    }
    assert filled_steps
