"""The outbox and the projector apart from the service (real PostgreSQL).

``mdp trading follow`` as a process of its own, on a real Kafka broker, while the service
stores a session that takes every saga path (and other accounts' events, some while the
follower is down): every stored event reaches ``trading.events`` exactly once (no repeat, even
across a stop and a restart), in each account's order under its key, and the read models it
projected equal a rebuild from the log. And ``serve``'s process with ``followers`` off runs
neither: nothing reaches ``trading.events`` until the followers run beside it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from decimal import Decimal

import httpx
import psycopg

from access.settings import TokenSettings
from core.topic_codecs import codec_for
from core.topics import TRADING_EVENTS
from core.trading_events import TradingRecord
from machine import free_port, stop_process
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from streams.memory import MemoryBus
from telemetry.readiness import READINESS
from tests.streams.kafka.conftest import fresh_topics, kafka_bootstrap  # noqa: F401
from tests.support import tokens
from tests.trading.http.test_api import ALICE, ORDERS, limit_buy, trader
from tests.trading.http.test_command import funded, started
from tests.trading.readmodels.test_readmodels import contents
from tests.trading.service.scenario import Session, no_fault
from tests.trading.store.topic_reads import published
from trading.followers import OUTBOX_CHECK, PROJECTOR_CHECK, FollowSettings, following
from trading.paper.matcher import PaperMatcher
from trading.process import ProcessSettings, running
from trading.readmodels.tables import model
from trading.service.shell import TradingService
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.projector import Projector
from trading.store.wire import EVENT_CODEC

WITHIN_S = 60.0
OTHERS = (21, 22, 23)
"""Accounts besides the session's, funded in two rounds."""


def stored(url: str) -> list[tuple[int, str, int]]:
    """Every stored event's notification id, aggregate and version, in id order."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_id, originator_version FROM trading_events"
            " ORDER BY 1"
        ).fetchall()
    return [(n, str(aggregate), version) for n, aggregate, version in rows]


def follower(url: str, schema: str, bootstrap: str, admin: int) -> subprocess.Popen[bytes]:
    """``mdp trading follow``, once its admin port answers ``/readyz``."""
    command = [
        sys.executable, "-m", "mdp.cli", "trading", "follow", "--database-url", url,
        "--schema", schema, "--admin-port", str(admin),
    ]  # fmt: skip
    environment = os.environ | {"KAFKA_BOOTSTRAP": bootstrap}
    return started(command, f"http://127.0.0.1:{admin}", environment, name="mdp trading follow")


async def on_topic(bootstrap: str, expected: int) -> list[TradingRecord]:
    """Every record of ``trading.events`` (a fresh group from the start), once ``expected``
    came and nothing more does."""
    async with KafkaBus(KafkaSettings(bootstrap)) as bus:
        return await published(bus, TRADING_EVENTS, expected, timeout=WITHIN_S)


async def deposits(database: Database, amount: int) -> None:
    service = TradingService(database, PaperMatcher())
    for account in OTHERS:
        await service.deposit(account, "USDT", Decimal(amount))


async def test_the_follow_process_publishes_each_event_once_and_projects_what_a_rebuild_does(
    fresh_database: str,
    fresh_topics: str,  # noqa: F811
) -> None:
    url, admin = fresh_database, free_port()
    with Database(StoreSettings(url, snapshot_every=10)) as database:
        database.create_tables()
        schema = f"{database.schema}_read"
        process = await asyncio.to_thread(follower, url, schema, fresh_topics, admin)
        try:
            await Session(database, no_fault).run()  # followed as it is stored
            await deposits(database, 1_000)
            first = stored(url)
            assert len(await on_topic(fresh_topics, len(first))) == len(first)
            assert await asyncio.to_thread(stop_process, process) == 0

            await deposits(database, 2_000)  # stored while no follower runs
            process = await asyncio.to_thread(follower, url, schema, fresh_topics, admin)
            await deposits(database, 3_000)  # and after it started again
            every = stored(url)
            records = await on_topic(fresh_topics, len(every))
            projector = Projector(database, EventStore(database, EVENT_CODEC), model(schema))
            deadline = time.monotonic() + WITHIN_S
            while projector.position() < every[-1][0]:
                assert time.monotonic() < deadline, "the read models did not follow the log"
                await asyncio.sleep(0.05)
            assert await asyncio.to_thread(stop_process, process) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert len(every) > len(first) + len(OTHERS)
        # each stored event once (no repeat across the stop), and each account's in order
        seen = [(r.notification_id, r.aggregate_id, r.version) for r in records]
        assert len(seen) == len(every)
        assert sorted(seen) == every
        for aggregate in {item[1] for item in every}:
            versions = [version for _, of, version in seen if of == aggregate]
            assert versions == list(range(1, len(versions) + 1)), aggregate
        live = contents(url, schema)
        assert live["trading_fills"]
        assert live["trading_balances"]
        assert projector.rebuild() == every[-1][0]
        assert contents(url, schema) == live


async def test_with_followers_off_the_process_publishes_nothing_until_they_run_beside_it(
    fresh_database: str,
) -> None:
    schema = f"{await asyncio.to_thread(funded, fresh_database)}_read"
    process = ProcessSettings(
        fresh_database, TokenSettings(keys=tokens.keyset()), port=0, schema=schema,
        followers=False,
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {trader(ALICE)}"}
    async with (
        MemoryBus() as bus,
        running(process, bus) as server,
        httpx.AsyncClient(base_url=server.url, headers=headers) as alice,
        bus.subscribe("check", [TRADING_EVENTS], start="earliest") as subscription,
    ):
        assert OUTBOX_CHECK not in READINESS.checks()
        assert PROJECTOR_CHECK not in READINESS.checks()
        placed = await alice.post(ORDERS, json=limit_buy("apart-1", price="49000"))
        assert placed.status_code == 201, placed.text
        assert await subscription.poll(100, timeout=0.5) == []
        assert (await alice.get(ORDERS)).json()["orders"] == []  # the tables exist, unfed

        stop = asyncio.Event()
        async with following(FollowSettings(fresh_database, schema=schema), bus, stop):
            codec = codec_for(TRADING_EVENTS)
            records: list[TradingRecord] = []
            expected = len(stored(fresh_database))
            async with asyncio.timeout(10):
                while len(records) < expected:
                    batch = await subscription.poll(100, timeout=0.5)
                    records += [codec.decode(record.value) for record in batch]
                while not (await alice.get(ORDERS)).json()["orders"]:
                    await asyncio.sleep(0.05)
            assert READINESS.checks()[OUTBOX_CHECK] is None
        assert not stop.is_set()
    assert [(r.notification_id, r.aggregate_id, r.version) for r in records] == stored(
        fresh_database
    )  # one account: one key, in order
