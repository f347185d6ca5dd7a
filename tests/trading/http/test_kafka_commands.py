"""``trading.commands`` on a real Kafka broker into ``mdp trading serve --bus kafka`` (real
PostgreSQL): the commands reach the service and their events reach ``trading.events``; a
kill -9 after the commands are applied and before their offsets are committed, then a
restart that reads them again, leaves one order per client order id and no event stored
twice (a record the outbox sends again after the kill carries the same notification id, and
consumers drop it by that id: ``core.trading_events.Deduplicator``)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from core import trading_commands as tc
from core.topic_codecs import TRADING_COMMANDS_CODEC, codec_for
from core.topics import TRADING_EVENTS
from core.trading_events import (
    Deduplicator,
    FundsDeposited,
    OrderAccepted,
    OrderCanceled,
    OrderSide,
    OrderSubmitted,
    OrderType,
    TradingRecord,
)
from machine import free_port, stop_process
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from streams.producer import send
from tests.streams.kafka.conftest import fresh_topics, kafka_bootstrap  # noqa: F401
from tests.trading.http.test_command import ALICE, funded, key_server, started
from tests.trading.service.scenario import XBT
from trading.service.book import aggregate_id
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.wire import EVENT_CODEC

__all__ = ["key_server"]  # the fixture this module uses
WITHIN_S = 90.0
"""The consumer joins its group first (a Kafka rebalance takes seconds)."""


def limit_buy(client_order_id: str) -> tc.PlaceOrder:
    return tc.PlaceOrder(
        account=ALICE, client_order_id=client_order_id, instrument=XBT, side=OrderSide.BUY,
        type=OrderType.LIMIT, quantity=Decimal("0.1"), price=Decimal(48000),
    )  # fmt: skip


BEFORE_THE_KILL: list[tc.TradingCommand] = [
    limit_buy("k-1"),
    limit_buy("k-2"),
    limit_buy("k-1"),  # a producer's retry
    tc.CancelOrder(account=ALICE, client_order_id="k-2"),
    tc.Deposit(account=ALICE, currency="USDT", amount=Decimal(5)),
]
AFTER_THE_RESTART = limit_buy("k-3")


async def records_until(
    bootstrap: str, done: Callable[[list[TradingRecord]], bool], deadline: float
) -> list[TradingRecord]:
    """The records on ``trading.events``, read from the start until ``done(records)``."""
    codec = codec_for(TRADING_EVENTS)
    found: list[TradingRecord] = []
    async with (
        KafkaBus(KafkaSettings(bootstrap)) as bus,
        bus.subscribe(f"check-{time.monotonic_ns()}", [TRADING_EVENTS]) as subscription,
    ):
        while not done(found):
            assert time.monotonic() < deadline, f"trading.events has only {len(found)} records"
            found += [codec.decode(r.value) for r in await subscription.poll(1000, timeout=1.0)]
    return found


def submitted(records: list[TradingRecord]) -> Counter[str]:
    return Counter(r.event.client_order_id for r in records if isinstance(r.event, OrderSubmitted))


def accepted(client_order_id: str) -> Callable[[list[TradingRecord]], bool]:
    """Whether the records hold the order's ``order-accepted`` (the end of its saga's steps
    until a trade)."""

    def done(records: list[TradingRecord]) -> bool:
        ids = {r.event.order_id for r in records if isinstance(r.event, OrderSubmitted)
               and r.event.client_order_id == client_order_id}  # fmt: skip
        return any(isinstance(r.event, OrderAccepted) and r.event.order_id in ids for r in records)

    return done


async def test_commands_on_kafka_reach_the_service_once_across_a_kill_before_the_commit(
    fresh_database: str,
    key_server: str,
    fresh_topics: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    schema = await asyncio.to_thread(funded, fresh_database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [
        "serve", "--database-url", fresh_database, "--port", str(port), "--jwks-url", key_server,
        "--schema", f"{schema}_read", "--bus", "kafka",
    ]  # fmt: skip
    marker = tmp_path / "applied-not-committed"
    environment = os.environ | {"KAFKA_BOOTSTRAP": fresh_topics}
    hanging = environment | {
        "MDP_TEST_HANG_AT": str(len(BEFORE_THE_KILL)),
        "MDP_TEST_MARKER": str(marker),
    }
    deadline = time.monotonic() + WITHIN_S
    async with KafkaBus(KafkaSettings(fresh_topics)) as bus:
        await send(bus, TRADING_COMMANDS_CODEC, BEFORE_THE_KILL)
    child = [sys.executable, "-m", "tests.trading.http.commands_child", *serve]
    process = await asyncio.to_thread(started, child, base, hanging)
    try:
        while not marker.exists():  # every command applied, the commit not done
            assert time.monotonic() < deadline, "the commands were not applied"
            await asyncio.sleep(0.1)
        before = await records_until(
            fresh_topics, lambda rs: any(isinstance(r.event, OrderCanceled) for r in rs), deadline
        )
        assert submitted(before) == Counter({"k-1": 1, "k-2": 1})
        process.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(process.wait, 30) == -signal.SIGKILL

        command = [sys.executable, "-m", "mdp.commands.trading", *serve]
        process = await asyncio.to_thread(started, command, base, environment)
        async with KafkaBus(KafkaSettings(fresh_topics)) as bus:
            await send(bus, TRADING_COMMANDS_CODEC, [AFTER_THE_RESTART])
        after = await records_until(fresh_topics, accepted("k-3"), deadline)
        assert await asyncio.to_thread(stop_process, process) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    seen = Deduplicator()
    events = [r for r in after if seen.is_new(r)]
    with Database(StoreSettings(fresh_database)) as database:
        stored = EventStore(database, EVENT_CODEC).read(aggregate_id(ALICE))
    assert [(r.version, r.event) for r in events] == [(s.version, s.event) for s in stored]
    assert submitted(events) == Counter({"k-1": 1, "k-2": 1, "k-3": 1})
    canceled = [r.event.order_id for r in events if isinstance(r.event, OrderCanceled)]
    orders = {r.event.client_order_id: r.event.order_id for r in events
              if isinstance(r.event, OrderSubmitted)}  # fmt: skip
    assert canceled == [orders["k-2"]]
    deposits = [r.event.amount for r in events if isinstance(r.event, FundsDeposited)]
    assert deposits == [Decimal(100_000), Decimal(5)]  # funded(), then the command, once
