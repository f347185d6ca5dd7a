"""Two ``mdp trading serve`` processes partitioned by account (``--partition 0/2`` and ``1/2``,
real PostgreSQL, a real Kafka broker) behind the real HAProxy edge, which routes each request
by its token's ``acct``: each account's orders reach its own instance, a request sent straight
to the other is 421 ``wrong-partition``, every instance takes every trade and its own
accounts' commands, and ``trading.events`` carries each stored event once. A kill -9 of one
instance makes its accounts 503 at the edge and leaves the other's working; restarted, it
serves them again (its order resumed) and no event is published twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from core import trading_commands as tc
from core.partitions import Partition
from core.ticks import Side, Tick, TickBatch
from core.topic_codecs import TICKS_CODEC, TRADING_COMMANDS_CODEC, codec_for
from core.topics import TICKS, TRADING_EVENTS
from core.trading_events import FundsDeposited, TradingRecord
from edge.config import TokenPolicy, VerifyKey, trading_partitions
from machine import free_port, stop_process
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from streams.producer import send
from tests.edge.conftest import AUDIENCE, ISSUER, Stack, eventually, stack
from tests.streams.kafka.conftest import fresh_topics, kafka_bootstrap  # noqa: F401
from tests.support import tokens
from tests.trading.http.test_api import ALICE, BOB, ORDERS, limit_buy, trader
from tests.trading.http.test_command import key_server, started
from tests.trading.http.test_kafka_commands import records_until
from tests.trading.service.scenario import XBT
from trading.paper.matcher import PaperMatcher
from trading.service.shell import TradingService
from trading.store.database import Database, StoreSettings
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxSettings

__all__ = ["key_server", "stack"]  # the fixtures this module uses
WITHIN_S = 90.0
"""Each instance's consumers join their groups first (a Kafka rebalance takes seconds)."""
PARTITIONS = (Partition(0, 2), Partition(1, 2))
OWNER = {ALICE: 1, BOB: 0}
"""ALICE (1) is partition 1/2's, BOB (2) partition 0/2's."""
DEPOSITED = {ALICE: Decimal(7), BOB: Decimal(11)}
"""What each account's command on ``trading.commands`` deposits."""


def funded(url: str) -> str:
    """The database's schema, with both accounts funded (by an unpartitioned service)."""
    with Database(StoreSettings(url)) as database:
        database.create_tables()
        service = TradingService(database, PaperMatcher())

        async def fund() -> None:
            for account in (ALICE, BOB):
                await service.deposit(account, "USDT", Decimal(100_000))

        asyncio.run(fund())
        return database.schema


def outbox_done(url: str) -> bool:
    """Whether both instances' outboxes have read the whole log (so published all of it)."""
    with Database(StoreSettings(url)) as database:
        log = NotificationLog(database)
        last = log.last_id()
        names = [OutboxSettings().name + partition.suffix() for partition in PARTITIONS]
        return all(log.position(name) == last for name in names)


def stored_ids(url: str) -> list[int]:
    with Database(StoreSettings(url)) as database:
        return [n.id for n in NotificationLog(database).after(0, 10_000)]


async def published_once(url: str, bootstrap: str, deadline: float) -> None:
    """Once both outboxes have read the whole log: ``trading.events`` holds every stored
    event exactly once (read to its end, repeats not dropped)."""
    while not await asyncio.to_thread(outbox_done, url):
        assert time.monotonic() < deadline, "the outboxes did not publish the log"
        await asyncio.sleep(0.1)
    ids = await asyncio.to_thread(stored_ids, url)
    codec = codec_for(TRADING_EVENTS)
    found: list[int] = []
    async with (
        KafkaBus(KafkaSettings(bootstrap)) as bus,
        bus.subscribe(f"check-{time.monotonic_ns()}", [TRADING_EVENTS]) as subscription,
    ):
        empty = 0
        while len(found) < len(ids) or empty < 2:  # then two empty polls: nothing more
            assert time.monotonic() < deadline, f"trading.events has {len(found)} of {len(ids)}"
            records = await subscription.poll(1000, timeout=1.0)
            empty = 0 if records else empty + 1
            found += [codec.decode(r.value).notification_id for r in records]
    assert Counter(found) == Counter(ids)


def problem(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["type"].endswith(f"/{kind}"), body
    return body


async def test_two_partitions_behind_the_edge_share_the_accounts(
    stack: Stack,
    fresh_database: str,
    key_server: str,
    fresh_topics: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    schema = await asyncio.to_thread(funded, fresh_database)
    ports = [free_port() for _ in PARTITIONS]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    commands = [
        [
            sys.executable, "-m", "mdp.commands.trading", "serve", "--database-url",
            fresh_database, "--port", str(port), "--jwks-url", key_server,
            "--schema", f"{schema}_read", "--bus", "kafka", "--partition", str(partition),
        ]
        for port, partition in zip(ports, PARTITIONS, strict=True)
    ]  # fmt: skip
    environment = os.environ | {"KAFKA_BOOTSTRAP": fresh_topics}
    processes: list[subprocess.Popen[bytes]] = []
    deadline = time.monotonic() + WITHIN_S
    try:
        for command, base in zip(commands, bases, strict=True):
            processes.append(await asyncio.to_thread(started, command, base, environment))
        pem = tmp_path / f"{tokens.KEY.kid}.pem"
        pem.write_text(tokens.KEY.public_pem)
        policy = TokenPolicy(ISSUER, AUDIENCE, (VerifyKey(tokens.KEY.kid, pem),))
        servers = [(base.removeprefix("http://"),) for base in bases]
        await stack.reload(trading=trading_partitions(servers), tokens=policy)
        clients = {
            account: httpx.AsyncClient(
                base_url=stack.url,
                timeout=10,
                headers={"Authorization": f"Bearer {trader(account)}"},
            )
            for account in (ALICE, BOB)
        }

        async def serves(account: int) -> bool:
            return (await clients[account].get(ORDERS)).status_code == 200

        for account in (ALICE, BOB):
            await eventually(lambda account=account: serves(account), 20)  # type: ignore[misc]

        # each account's orders reach its own instance through the edge
        order_ids = {}
        for account in (ALICE, BOB):
            placed = await clients[account].post(ORDERS, json=limit_buy(f"p-{account}"))
            assert placed.status_code == 201, placed.text
            order_ids[account] = placed.json()["order"]["order_id"]
        for account, owner in OWNER.items():
            headers = clients[account].headers
            url = f"{ORDERS}/{order_ids[account]}"
            own = httpx.get(bases[owner] + url, headers=headers)
            assert own.json()["order"]["status"] == "accepted"
            other = bases[1 - owner]
            body = problem(httpx.get(other + url, headers=headers), 421, "wrong-partition")
            assert (body["code"], body["partition"], body["served"]) == (
                "wrong-partition", f"{owner}/2", f"{1 - owner}/2",
            )  # fmt: skip
            refused = httpx.post(other + ORDERS, json=limit_buy("stray"), headers=headers)
            problem(refused, 421, "wrong-partition")

        # each instance applies its own accounts' commands, once
        async with KafkaBus(KafkaSettings(fresh_topics)) as bus:
            deposits = [tc.Deposit(account=a, currency="USDT", amount=d)
                        for a, d in DEPOSITED.items()]  # fmt: skip
            await send(bus, TRADING_COMMANDS_CODEC, deposits)

            def deposited(records: list[TradingRecord]) -> bool:
                made = {(r.event.account, r.event.amount) for r in records
                        if isinstance(r.event, FundsDeposited)}  # fmt: skip
                return set(DEPOSITED.items()) <= made

            await records_until(fresh_topics, deposited, deadline)

            # every instance takes every trade: both orders fill on one trade through them
            trade_id = 0
            while True:
                statuses = [
                    (await clients[a].get(f"{ORDERS}/{order_ids[a]}")).json()["order"]["status"]
                    for a in (ALICE, BOB)
                ]
                if statuses == ["filled", "filled"]:
                    break
                assert time.monotonic() < deadline, f"not filled from md.ticks: {statuses}"
                trade_id += 1
                now = time.time_ns()
                tick = Tick(XBT, trade_id, Decimal(48900), Decimal(1), Side.SELL, now, now)
                await bus.topic(TICKS).publish(*TICKS_CODEC.record(TickBatch.from_ticks([tick])))
                await asyncio.sleep(0.3)

        # an order left open, to be resumed after the kill
        resting = await clients[ALICE].post(ORDERS, json=limit_buy("p-rest", price="48000"))
        assert resting.status_code == 201, resting.text
        resting_url = f"{ORDERS}/{resting.json()['order']['order_id']}"

        # trading.events carries each stored event once
        await published_once(fresh_database, fresh_topics, deadline)
        for account in (ALICE, BOB):
            events = (await clients[account].get("/trading/v1/events")).json()["events"]
            amounts = [e["event"]["amount"] for e in events
                       if e["event"]["kind"] == "funds-deposited"]  # fmt: skip
            assert amounts == ["100000", str(DEPOSITED[account])]

        # a kill -9 of ALICE's instance: 503 at the edge for her, BOB's instance goes on
        alices = OWNER[ALICE]
        processes[alices].send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(processes[alices].wait, 30) == -signal.SIGKILL

        async def unavailable() -> bool:
            return (await clients[ALICE].get(ORDERS)).status_code == 503

        await eventually(unavailable, 20)
        problem(await clients[ALICE].post(ORDERS, json=limit_buy("p-down")), 503, "unavailable")
        placed = await clients[BOB].post(ORDERS, json=limit_buy("p-bob-2"))
        assert placed.status_code == 201, placed.text

        # restarted: ALICE's instance serves her again, her open order resumed
        processes[alices] = await asyncio.to_thread(
            started, commands[alices], bases[alices], environment
        )
        await eventually(lambda: serves(ALICE), 20)
        placed = await clients[ALICE].post(ORDERS, json=limit_buy("p-alice-2"))
        assert placed.status_code == 201, placed.text
        assert placed.json()["order"]["status"] == "accepted"
        canceled = await clients[ALICE].delete(resting_url)  # the resumed venue holds it
        assert canceled.json()["order"]["status"] == "canceled", canceled.text
        await published_once(fresh_database, fresh_topics, deadline)  # none doubled
        for client in clients.values():
            await client.aclose()
        for process in processes:
            assert await asyncio.to_thread(stop_process, process) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
