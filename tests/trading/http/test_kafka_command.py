"""``mdp trading serve --bus kafka`` as a process (real PostgreSQL, a real Kafka broker): the
trades on Kafka's ``md.ticks`` fill an order placed over HTTP, and the fills reach Kafka's
``trading.events`` through the outbox."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from decimal import Decimal

import httpx

from core.ticks import Side, Tick, TickBatch
from core.topic_codecs import TICKS_CODEC, codec_for
from core.topics import TICKS, TRADING_EVENTS
from core.trading_events import OrderFilled
from machine import free_port, stop_process
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.streams.kafka.conftest import fresh_topics, kafka_bootstrap  # noqa: F401
from tests.trading.http.test_api import ALICE, ORDERS, limit_buy, trader
from tests.trading.http.test_command import funded, key_server, started
from tests.trading.service.scenario import XBT

__all__ = ["key_server"]  # the fixture this module uses
FILLED_WITHIN_S = 60.0
"""The command's consumer joins its group first."""


async def test_the_command_trades_on_kafka(
    fresh_database: str,
    key_server: str,
    fresh_topics: str,  # noqa: F811
) -> None:
    schema = await asyncio.to_thread(funded, fresh_database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "mdp.commands.trading", "serve", "--database-url", fresh_database,
        "--port", str(port), "--jwks-url", key_server, "--schema", f"{schema}_read",
        "--bus", "kafka",
    ]  # fmt: skip
    environment = os.environ | {"KAFKA_BOOTSTRAP": fresh_topics}
    process = await asyncio.to_thread(started, command, base, environment)
    headers = {"Authorization": f"Bearer {trader(ALICE)}"}
    try:
        async with (
            httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as alice,
            KafkaBus(KafkaSettings(fresh_topics)) as bus,
        ):
            placed = await alice.post(ORDERS, json=limit_buy("kafka-1", quantity="0.1"))
            assert placed.status_code == 201, placed.text
            order_url = f"{ORDERS}/{placed.json()['order']['order_id']}"
            deadline = time.monotonic() + FILLED_WITHIN_S
            trade_id, status = 0, "accepted"
            while status != "filled":
                assert time.monotonic() < deadline, f"not filled from Kafka's md.ticks: {status}"
                trade_id += 1
                now = time.time_ns()
                tick = Tick(XBT, trade_id, Decimal(48900), Decimal(1), Side.SELL, now, now)
                batch = TickBatch.from_ticks([tick])
                await bus.topic(TICKS).publish(*TICKS_CODEC.record(batch))
                await asyncio.sleep(0.2)
                status = (await alice.get(order_url)).json()["order"]["status"]
            async with bus.subscribe("check", [TRADING_EVENTS], start="earliest") as subscription:
                found: list[object] = []
                while not any(isinstance(getattr(m, "event", m), OrderFilled) for m in found):
                    assert time.monotonic() < deadline, "no fill on Kafka's trading.events"
                    records = await subscription.poll(1000, timeout=1.0)
                    found += [codec_for(TRADING_EVENTS).decode(r.value) for r in records]
        assert await asyncio.to_thread(stop_process, process) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
