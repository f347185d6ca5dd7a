"""Cluster mode end to end, on the real broker and the real PostgreSQL: ``mdp ingest`` ->
``md.ticks`` -> ``mdp worker`` -> ``md.candles`` -> ``mdp writer`` -> the database."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np
import pytest

from core import codecs
from core.candles import Candle
from core.ticks import Side, Tick, batches_by_instrument
from core.topics import CANDLES, TICKS, TICKS_REJECTED
from machine import free_port
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.streams.kafka.cluster import (
    INSTRUMENT,
    KRAKEN,
    LAST_MINUTE,
    Cluster,
    clean_run,
    content,
    final_candles,
    kraken_complete,
    official,
    read_topic,
    stored_minutes,
    tick_rows,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("fresh_topics")


@pytest.fixture
def cluster(fresh_topics: str, migrated_database: str, tmp_path: Path) -> Cluster:
    return Cluster(fresh_topics, migrated_database, tmp_path)


def assert_kraken_result(cluster: Cluster, shared_data: Path) -> None:
    """The database holds Kraken's official candles, every tick once; the last revision of
    every candle on md.candles is what one engine fed the whole file gives."""
    expected = official(shared_data)
    stored = stored_minutes(cluster.database_url)
    assert {t: stored[t][0] for t in expected} == expected
    assert all(stored[t][1] != "open" for t in expected)
    assert tick_rows(cluster.database_url) == (471, 471)
    clean = clean_run(shared_data)
    final = {
        key[2]: candle
        for key, candle in final_candles(cluster.bootstrap).items()
        if key[:2] == (INSTRUMENT, "1m") and key[2] <= LAST_MINUTE
    }
    assert {t: content(c) for t, c in final.items()} == clean
    assert all(c.status != "open" for c in final.values())


def test_kraken_trades_through_kafka_end_as_krakens_official_candles(
    cluster: Cluster, shared_data: Path
) -> None:
    with cluster:
        writer = cluster.writer()
        worker = cluster.worker()  # the default consumer; both run the kill test's Kraken replay
        worker.wait_for("recovered", count=4)
        done = cluster.ingest("--replay", str(shared_data / KRAKEN / "trades.json"), "--speed", "0")
        assert done.returncode == 0, done.stderr
        assert "471 ticks" in done.stderr
        wait_until(lambda: kraken_complete(cluster.database_url), "the last official minute")
        assert_kraken_result(cluster, shared_data)
        assert worker.stop() == 0
        assert writer.stop() == 0
    assert "Traceback" not in worker.log + writer.log


CONSUMERS = pytest.mark.parametrize("consumer", ["faust", "batch"])
"""Both ways of reading md.ticks (``mdp worker --consumer``) keep the durability contract."""


@CONSUMERS
def test_a_worker_killed_mid_replay_and_restarted_ends_like_a_clean_run(
    cluster: Cluster, shared_data: Path, consumer: str
) -> None:
    with cluster:
        cluster.writer()
        first = cluster.worker("--consumer", consumer)
        first.wait_for("recovered", count=4)
        replay = cluster.start(
            "ingest", "ingest", "--replay", str(shared_data / KRAKEN / "trades.json"),
            "--speed", "2000",
        )  # fmt: skip
        wait_until(lambda: len(stored_minutes(cluster.database_url)) >= 30, "some candles")
        first.kill()
        assert len(stored_minutes(cluster.database_url)) < 200, "killed in the middle"
        second = cluster.worker("--consumer", consumer)
        second.wait_for("recovered", count=4)
        assert re.search(r"recovered in [0-9.]+s: offset \d+, \d+ steps replayed", second.log)
        assert replay.process.wait(60) == 0
        wait_until(lambda: kraken_complete(cluster.database_url), "the last official minute")
        assert_kraken_result(cluster, shared_data)


@CONSUMERS
def test_two_workers_split_the_partitions_and_agree_with_one(
    cluster: Cluster, shared_data: Path, consumer: str
) -> None:
    with cluster:
        cluster.writer()
        first = cluster.worker("--database-url", "", "--consumer", consumer)  # journal only
        first.wait_for("recovered", count=4)
        replay = cluster.start(
            "ingest", "ingest", "--replay", str(shared_data / KRAKEN / "trades.json"),
            "--speed", "2000",
        )  # fmt: skip
        time.sleep(1.5)
        second = cluster.worker("--database-url", "", "--consumer", consumer)  # a rebalance
        second.wait_for("recovered")
        assert replay.process.wait(60) == 0
        wait_until(lambda: kraken_complete(cluster.database_url), "the last official minute")
        assert_kraken_result(cluster, shared_data)
        assert "handed over" in first.log


@CONSUMERS
def test_poison_messages_end_in_the_rejects_and_the_worker_keeps_going(
    cluster: Cluster, consumer: str
) -> None:
    with cluster:
        worker = cluster.worker("--consumer", consumer)
        worker.wait_for("recovered", count=4)
        sent = publish_poison(cluster.bootstrap)
        rejects: list[codecs.RejectedMessage] = []

        def all_rejected() -> bool:
            rejects[:] = [
                codecs.decode_rejected(v)
                for v in read_topic(cluster.bootstrap, TICKS_REJECTED, 0.5)
            ]
            return len(rejects) >= len(sent)

        wait_until(all_rejected, "the rejects")
        by_origin = {r.origin: r for r in rejects}
        for origin, (payload, reason) in sent.items():
            reject = by_origin[origin]
            assert reject.reason == "undecodable"
            assert reason in reject.detail
            assert reject.payload == payload
            assert reject.source == f"engine-{cluster.suffix}"
        wait_until(
            lambda: any(k[0] == "TEST:POISON" for k in final_candles(cluster.bootstrap, 0.5)),
            "the good batch's candle",
        )
        assert worker.process.poll() is None


def publish_poison(bootstrap: str) -> dict[str, tuple[bytes, str]]:
    """Bad bytes, a wrong schema version, a negative price, then a good batch, all keyed by
    one instrument; returns each bad one's origin with its bytes and the reason expected."""
    now = time.time_ns()
    tick = Tick("TEST:POISON", 1, Decimal("100.5"), Decimal(2), Side.BUY, now, now)
    (good,) = batches_by_instrument([tick])
    wire = msgspec.msgpack.decode(codecs.encode_tick_batch(good))
    negative = msgspec.msgpack.encode(wire | {"price": np.array([-5], "<i8").tobytes()})
    newer = msgspec.msgpack.encode(wire | {"v": 2})
    bad = [
        (b"\xc1 not msgpack {", "bad tick batch message"),
        (newer, "unknown schema version 2"),
        (negative, "price must be positive"),
    ]

    async def publish() -> dict[str, tuple[bytes, str]]:
        async with KafkaBus(KafkaSettings(bootstrap), create_topics=False) as bus:
            topic = bus.topic(TICKS)
            records = await topic.publish_many(
                [(b"TEST:POISON", value) for value, _ in bad]
                + [(b"TEST:POISON", codecs.encode_tick_batch(good))]
            )
        return {
            f"{TICKS}/{r.partition}/{r.offset}": item for r, item in zip(records, bad, strict=False)
        }

    return asyncio.run(publish())


def test_a_broker_that_is_down_gets_a_clear_message_and_retries(migrated_database: str) -> None:
    env = os.environ | {"KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    commands = (
        ["worker"],
        ["ingest", "--duration", "1"],
        ["writer", "--database-url", migrated_database],
    )
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "mdp.cli", *command, "--connect-timeout", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    for process in running:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 1, stderr
        assert "not reachable" in stderr
        assert "retrying in" in stderr
        assert "no Kafka broker answered at" in stderr
        assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("late_by", "consumer"),
    [("60", "faust"), ("7200", "faust"), ("7200", "batch")],
    ids=["a minute", "beyond the horizon", "beyond the horizon, batch"],
)  # the batch consumer's rounds of a backlog are its own: whole polls, not Faust's 256
def test_a_worker_started_after_the_ticks_came_publishes_each_candle_right_once(
    cluster: Cluster, shared_data: Path, late_by: str, consumer: str
) -> None:
    """The ticks wait on md.ticks (one a record: many steps) before the worker starts; its
    wall clock is then ahead of their receipt times, by more than the horizon in one run.
    Every candle is first published closed, with the values of a clean run, and no tick is
    rejected."""
    with cluster:
        done = cluster.ingest(
            "--replay", str(shared_data / KRAKEN / "trades.json"), "--speed", "0",
            "--batch-ticks", "1",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        time.sleep(3)  # older than the allowed lateness
        worker = cluster.worker("--clock-offset", late_by, "--consumer", consumer)

        def published() -> list[Candle]:
            candles = [codecs.decode_candle(v) for v in read_topic(cluster.bootstrap, CANDLES)]
            return [c for c in candles if c.instrument == INSTRUMENT and c.interval.label == "1m"]

        wait_until(
            lambda: any(c.open_time == LAST_MINUTE and c.status != "open" for c in published()),
            "the last official minute",
        )
        assert worker.stop() == 0
        closes = [c for c in published() if c.status != "open" and c.open_time <= LAST_MINUTE]
        assert [c for c in closes if c.status != "closed"] == []
        first = {c.open_time: content(c) for c in closes}
        assert len(first) == len(closes), "each candle is closed once"
        assert first == clean_run(shared_data)
        assert read_topic(cluster.bootstrap, TICKS_REJECTED, 0.5) == []
