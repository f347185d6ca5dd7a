"""The alert evaluator running (real PostgreSQL): exactly once across a kill -9 mid-replay on
the real Kraken trades, compared with a clean run; a changed alert reaching the evaluator
within a second; two evaluators in one group; a stale owner fenced; firings relayed to
``alerts.events`` after their commit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from core.alerts import AlertSpec, Arming, Condition, decode_fired
from core.topic_codecs import TICKS_CODEC
from core.topics import ALERTS_EVENTS, TICKS
from machine import stop_process
from main_api.alerts.evaluator import Delta
from main_api.alerts.runner import EvaluatorService, EvaluatorSettings
from main_api.alerts.states import FencedError, Saved, claim, save
from main_api.settings import PlanLimits
from main_api.store import MainStore
from streams.memory import MemoryBus
from streams.outage import Backoff
from tests.main_api.alerts.evaluator_child import CLUSTER_ID, INSTRUMENTS, batches
from tests.main_api.alerts.factories import SECOND, T0, ticks
from tests.mdp.test_synthetic_up import wait_for
from tests.storage.stoppable import StoppablePostgres

LIMITS = PlanLimits(watchlists=5, instruments=50, alerts=2000)
REPO = Path(__file__).resolve().parents[3]
WITHIN_S = 30.0


@pytest.fixture
def schemas(fresh_database: str) -> Iterator[tuple[str, list[str]]]:
    """The database URL and two schemas of this test's own (dropped after)."""
    names = [f"main_api_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    yield fresh_database, names
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def spec(alert_id: str, instrument: str, condition: str, threshold: str, **more: Any) -> AlertSpec:
    return AlertSpec(
        alert_id=alert_id, account=1, instrument=instrument, condition=Condition(condition),
        threshold=Decimal(threshold), **more,
    )  # fmt: skip


def kraken_trades(shared_data: Path) -> Path:
    """The Kraken trades file (the test is skipped without it)."""
    trades = shared_data / "kraken-xbtusdt-2025-11-10" / "trades.json"
    if not trades.exists():
        pytest.skip(f"the Kraken trades are not in {trades.parent}")
    return trades


def kraken_alerts() -> list[AlertSpec]:
    """A table of alerts on each copy of the Kraken trades (see test_kraken_alerts.py for
    where each crosses): once and re-arming, prices and moves."""
    made = []
    for i, name in enumerate(INSTRUMENTS):
        rearm: dict[str, Any] = {"arming": Arming.REARM}
        made += [
            spec(f"k{i}-cu105800", name, "cross-up", "105800"),
            spec(f"k{i}-b105400", name, "below", "105400"),
            spec(f"k{i}-cu105700", name, "cross-up", "105700", **rearm, cooldown_s=600),
            spec(f"k{i}-cd105600", name, "cross-down", "105600", **rearm),
            spec(f"k{i}-a106000", name, "above", "106000", **rearm, cooldown_s=30),
            spec(f"k{i}-mu03", name, "move-up", "0.3", window_s=600, **rearm, cooldown_s=60),
            spec(f"k{i}-md02", name, "move-down", "0.2", window_s=300),
        ]
    return made


async def create(url: str, schema: str, specs: list[AlertSpec]) -> None:
    async with MainStore.open(url, schema) as store:
        for alert in specs:
            await store.create_alert(alert, LIMITS, "pro")


def query(url: str, schema: str, text: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return conn.execute(text).fetchall()


def covered(url: str, schema: str) -> int:
    """The records of md.ticks the stored states cover."""
    rows = query(
        url, schema, f"SELECT coalesce(sum(next_offset), 0) FROM main_api_evaluator_states"
        f" WHERE topic = '{TICKS}' AND owner = 'alerts.evaluator@{CLUSTER_ID}'",
    )  # fmt: skip
    return int(rows[0][0])


def fired(url: str, schema: str) -> list[tuple[Any, ...]]:
    return query(
        url, schema, "SELECT fire_id, price, ts, trade_id, gap FROM main_api_fired ORDER BY fire_id"
    )


def child(url: str, schema: str, trades: Path, log: Path) -> subprocess.Popen[bytes]:
    """The evaluator in a process of its own (its stderr appended to ``log``)."""
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.main_api.alerts.evaluator_child", url, schema,
             str(trades)],
            cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


def until(what: str, done: Any, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WITHIN_S
    while not done():
        if process.poll() is not None:
            pytest.fail(f"the evaluator ended ({process.returncode}): {log.read_text()}")
        assert time.monotonic() < deadline, f"{what}: not within {WITHIN_S}s"
        time.sleep(0.01)


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    assert stop_process(process, WITHIN_S) == 0, log.read_text()


def test_a_killed_evaluator_restarted_fires_every_alert_once_as_a_clean_run_does(
    schemas: tuple[str, list[str]], shared_data: Path, tmp_path: Path
) -> None:
    trades = kraken_trades(shared_data)
    url, (clean, killed) = schemas
    total = len(batches(trades))
    for schema in (clean, killed):
        asyncio.run(create(url, schema, kraken_alerts()))

    log = tmp_path / "evaluator.log"
    running = child(url, clean, trades, log)
    started = time.monotonic()
    until("the clean run", lambda: covered(url, clean) == total, running, log)
    clean_s = time.monotonic() - started
    stop(running, log)
    expected = fired(url, clean)
    assert len(expected) >= 3 * len(INSTRUMENTS)  # every copy fires several alerts

    running = child(url, killed, trades, log)
    until("a third of the replay", lambda: covered(url, killed) >= total // 3, running, log)
    running.kill()  # SIGKILL, mid-replay
    running.wait(timeout=WITHIN_S)
    assert covered(url, killed) < total, "the replay ended before the kill"
    before = len(fired(url, killed))
    running = child(url, killed, trades, log)
    until("the replay after the restart", lambda: covered(url, killed) == total, running, log)
    stop(running, log)

    assert 0 < before < len(expected), clean_s
    assert fired(url, killed) == expected
    notifications = query(url, killed, "SELECT fire_id FROM main_api_notifications ORDER BY 1")
    assert [row[0] for row in notifications] == [row[0] for row in expected]


@pytest.fixture
async def store(schemas: tuple[str, list[str]]) -> AsyncIterator[MainStore]:
    url, (schema, _) = schemas
    async with MainStore.open(url, schema) as opened:
        yield opened


async def _running(
    store: MainStore, bus: MemoryBus, url: str, stop: asyncio.Event
) -> tuple[EvaluatorService, asyncio.Task[None]]:
    service = EvaluatorService(store, bus, url, EvaluatorSettings(poll_timeout=0.05))
    return service, asyncio.create_task(service.run(stop))


async def test_an_alert_set_while_the_evaluator_runs_fires_within_a_second_and_is_relayed(
    store: MainStore, schemas: tuple[str, list[str]]
) -> None:
    url = schemas[0]
    stop = asyncio.Event()
    async with MemoryBus(partitions=4) as bus, bus.subscribe("check", [ALERTS_EVENTS]) as events:
        topic = bus.topic(TICKS)
        await topic.publish(*TICKS_CODEC.record(ticks(["99"])))
        service, task = await _running(store, bus, url, stop)
        try:
            await wait_for(lambda: service.stats.rounds > 0 and service.hook is not None)
            await store.create_alert(
                spec("a-live", "TEST:BTCUSD", "cross-up", "100"), LIMITS, "pro"
            )
            await asyncio.sleep(1.0)  # the change has reached the evaluator by now
            await topic.publish(*TICKS_CODEC.record(ticks(["100"], first_id=2, start=T0 + SECOND)))
            published = time.monotonic()
            got = await events.poll(10, timeout=1.0)
            took = time.monotonic() - published
            assert [decode_fired(r.value).fire_id for r in got] == ["a-live:1"], took
            assert took < 1.0
            recorded = await store.alert(1, "a-live")
            assert recorded.status == "fired"
        finally:
            stop.set()
            await task


async def test_two_evaluators_in_one_group_fire_each_alert_once(
    store: MainStore, schemas: tuple[str, list[str]]
) -> None:
    url = schemas[0]
    names = ["TEST:A", "TEST:B", "TEST:C", "TEST:D", "TEST:E", "TEST:F"]
    for name in names:
        await store.create_alert(spec(f"x-{name[5:]}", name, "cross-up", "100",
                                      arming=Arming.REARM), LIMITS, "pro")  # fmt: skip
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    async with MemoryBus(partitions=4) as bus:
        topic = bus.topic(TICKS)

        async def wave(start: int) -> None:
            # each instrument crosses 100 up twice: two firings per alert per wave
            for name in names:
                prices = ["99", "101", "98", "102"]
                batch = ticks(prices, first_id=start, start=T0 + start * SECOND, instrument=name)
                await topic.publish(*TICKS_CODEC.record(batch))

        await wave(1)
        a, running_a = await _running(store, bus, url, stop_a)
        await wait_for(lambda: a.stats.recorded == 2 * len(names))
        b, running_b = await _running(store, bus, url, stop_b)  # the group splits
        await wait_for(lambda: b.hook is not None and len(b.hook.states) > 0)
        await wave(10)
        await wait_for(lambda: a.stats.recorded + b.stats.recorded == 4 * len(names))
        stop_a.set()
        await running_a  # its partitions go to b
        await wave(20)
        await wait_for(lambda: a.stats.recorded + b.stats.recorded == 6 * len(names))
        stop_b.set()
        await running_b
    rows = fired(url, schemas[1][0])
    assert sorted(row[0] for row in rows) == sorted(
        f"x-{name[5:]}:{arming}" for name in names for arming in range(1, 7)
    )
    assert b.stats.claims > 0


async def test_a_stale_owner_is_fenced_and_its_round_rolled_back(store: MainStore) -> None:
    async with store.transaction() as conn:
        first = await claim(conn, "g@c", TICKS, 0, 1)
    async with store.transaction() as conn:
        second = await claim(conn, "g@c", TICKS, 0, 2)
    assert (first.epoch, second.epoch, second.snapshot, second.alerts) == (1, 2, None, [])
    stale = Delta({"a": b"stale"}, {"s": b"stale"})
    with pytest.raises(FencedError):
        async with store.transaction() as conn:
            await save(conn, "g@c", [Saved(TICKS, 0, first.epoch, 10, 0, stale)], 3)
    mine = Delta({"a": b"mine", "b": b"mine too"}, {"s": b"stream"})
    async with store.transaction() as conn:
        await save(conn, "g@c", [Saved(TICKS, 0, second.epoch, 7, 4, mine)], 4)
    async with store.transaction() as conn:
        await save(conn, "g@c", [Saved(TICKS, 0, second.epoch, 8, 5, Delta({"b": None}, {}))], 5)
        third = await claim(conn, "g@c", TICKS, 0, 6)
    assert (third.epoch, third.next_offset, third.change_seq) == (3, 8, 5)
    assert (third.alerts, third.streams) == ([b"mine"], [b"stream"])


async def test_the_evaluator_rides_out_a_database_outage(
    stoppable_postgres: StoppablePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    url = stoppable_postgres.database("mdp")
    stop = asyncio.Event()
    async with (
        MainStore.open(url) as store,
        MemoryBus(partitions=4) as bus,
        bus.subscribe("check", [ALERTS_EVENTS]) as events,
    ):
        for alert_id, threshold in (("a-before", "100"), ("a-during", "200")):
            await store.create_alert(spec(alert_id, "TEST:BTCUSD", "cross-up", threshold),
                                     LIMITS, "pro")  # fmt: skip
        topic = bus.topic(TICKS)
        settings = EvaluatorSettings(poll_timeout=0.05)
        service = EvaluatorService(store, bus, url, settings, backoff=Backoff(0.1, 0.5))
        service.relay.backoff = Backoff(0.1, 0.5)
        task = asyncio.create_task(service.run(stop))
        try:
            await topic.publish(*TICKS_CODEC.record(ticks(["99", "100"])))
            await wait_for(lambda: service.stats.recorded == 1)
            await asyncio.to_thread(stoppable_postgres.stop)
            at = T0 + 10 * SECOND
            await topic.publish(*TICKS_CODEC.record(ticks(["199", "200"], first_id=3, start=at)))
            await wait_for(lambda: service.stats.restarts > 0)
            assert service.outage.ongoing
            assert service.backoff.failures > 0
            await asyncio.to_thread(stoppable_postgres.start)
            await wait_for(lambda: service.stats.recorded == 2, 30.0)
            # the first round stored after it ended the outage: told, backoff from the start
            assert not service.outage.ongoing
            assert service.backoff.failures == 0
            # the evaluator's own line (the relay tells its own end of the outage, maybe first)
            told = [
                r.getMessage() for r in caplog.records
                if r.name == "main_api.alerts.runner" and "available again" in r.getMessage()
            ]  # fmt: skip
            assert len(told) == 1, told
            assert told[0].startswith("alert evaluator: database or bus available again")
            relayed: list[str] = []
            deadline = time.monotonic() + 10
            while set(relayed) < {"a-before:1", "a-during:1"} and time.monotonic() < deadline:
                relayed += [decode_fired(r.value).fire_id for r in await events.poll(10, 0.2)]
            relayed += [decode_fired(r.value).fire_id for r in await events.poll(10, 0.5)]
            # each firing once and in order, as consumers see it: the relay may publish again
            # one whose publication the outage kept it from marking (consumers drop the repeat
            # by its fire_id, docs/main-api.md), and only one published before the outage
            assert list(dict.fromkeys(relayed)) == ["a-before:1", "a-during:1"]
            assert relayed.count("a-during:1") == 1
        finally:
            stop.set()
            await task


async def _replay(store: MainStore, url: str, trades: Path, cut_at: int | None) -> tuple[int, int]:
    """The Kraken records on a fresh in-process bus, evaluated by one instance, or with
    ``cut_at`` by two in one group, the first cut off (its task cancelled wherever it is)
    once ``cut_at`` records are stored; the claims and restarts of the survivor."""
    stop = asyncio.Event()
    settings = EvaluatorSettings(max_records=1, poll_timeout=0.05)
    records = batches(trades)
    async with MemoryBus(partitions=4) as bus:
        topic = bus.topic(TICKS)
        for batch in records:
            await topic.publish(*TICKS_CODEC.record(batch))
        first = EvaluatorService(store, bus, url, settings)
        cut = asyncio.create_task(first.run(stop))
        survivor, task = first, cut
        if cut_at is not None:
            await wait_for(lambda: first.stats.rounds > 5)
            survivor = EvaluatorService(store, bus, url, settings)
            task = asyncio.create_task(survivor.run(stop))
            await wait_for(lambda: first.stats.rounds + survivor.stats.rounds >= cut_at)
            cut.cancel()  # mid-round, mid-transaction: whatever it had not committed is lost
            with pytest.raises(asyncio.CancelledError):
                await cut
        owner = f"alerts.evaluator@{bus.cluster_id}"

        async def done() -> int:
            async with store.transaction() as conn:
                cursor = await conn.execute(
                    "SELECT coalesce(sum(next_offset), 0) AS n FROM main_api_evaluator_states"
                    " WHERE owner = %s AND topic = %s",
                    (owner, TICKS),
                )
                row = await cursor.fetchone()
                assert row is not None
                return int(row["n"])

        deadline = time.monotonic() + WITHIN_S
        while await done() < len(records):
            assert time.monotonic() < deadline, "the replay did not end"
            await asyncio.sleep(0.02)
        stop.set()
        await task
    return survivor.stats.claims, survivor.stats.restarts


async def test_two_evaluators_one_cut_off_mid_replay_fire_what_one_clean_run_fires(
    schemas: tuple[str, list[str]], shared_data: Path
) -> None:
    trades = kraken_trades(shared_data)
    url, (clean, split) = schemas
    for schema in (clean, split):
        await create(url, schema, kraken_alerts())
    async with MainStore.open(url, clean) as store:
        await _replay(store, url, trades, None)
    async with MainStore.open(url, split) as store:
        claims, _ = await _replay(store, url, trades, len(batches(trades)) // 2)
    assert claims >= 2  # its share when it joined, then the other's when it was cut off
    expected = fired(url, clean)
    assert len(expected) >= 3 * len(INSTRUMENTS)
    assert fired(url, split) == expected
