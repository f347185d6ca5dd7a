"""``mdp alerts evaluate`` on a real Kafka broker (real PostgreSQL): two instances in one
group share the partitions of the Kraken trades; one is killed with SIGKILL mid-replay and
started again; every alert fires exactly what one clean instance fires. The same holds when
the partitions move by rebalances while the records come in (a member joins, then one
leaves), and then no round is fenced: each revoked partition's round settles inside the
rebalance (``main_api.alerts.runner.Handover``), so no member's loop starts again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.topic_codecs import TICKS_CODEC
from core.topics import TICKS
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.main_api.alerts.evaluator_child import INSTRUMENTS, batches
from tests.main_api.alerts.test_evaluator_runs import (
    REPO,
    create,
    fired,
    kraken_alerts,
    kraken_trades,
    query,
    schemas,
)
from tests.streams.kafka.conftest import fresh_topics, kafka_bootstrap  # noqa: F401

__all__ = ["schemas"]  # the fixture this module uses
WITHIN_S = 90.0
"""A killed member keeps its partitions until its session times out (10 s)."""


PACE_S = 0.04
"""Seconds between the records published while members join and leave (about 8 s in all)."""


def evaluate(
    url: str, schema: str, group: str, bootstrap: str, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "mdp.cli", "alerts", "evaluate", "--database-url", url,
             "--schema", schema, "--group", group, "--batch", "2", "--bootstrap", bootstrap,
             "--log-level", "info"],
            cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


def covered(url: str, schema: str, owner: str) -> int:
    rows = query(
        url, schema, f"SELECT coalesce(sum(next_offset), 0) FROM main_api_evaluator_states"
        f" WHERE topic = '{TICKS}' AND owner = '{owner}'",
    )  # fmt: skip
    return int(rows[0][0])


def until(what: str, done: object, processes: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + WITHIN_S
    while not done():  # type: ignore[operator]
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"an evaluator ended ({process.returncode}): {log.read_text()}")
        assert time.monotonic() < deadline, f"{what}: not within {WITHIN_S}s\n{log.read_text()}"
        time.sleep(0.05)


def stop(processes: list[subprocess.Popen[bytes]], log: Path) -> None:
    """SIGTERM to each, and each must end cleanly (one that does not is killed, so no test
    after this one inherits it)."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=WITHIN_S))
        except subprocess.TimeoutExpired:
            codes.append(None)
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert codes == [0] * len(processes), log.read_text()


def said(log: Path, group: str) -> int:
    """How many times ``mdp alerts evaluate`` in ``group`` said that it runs (each says so
    once its signal handlers are in place)."""
    return log.read_text().count(f"evaluating alerts in group {group} ")


async def publish(
    bootstrap: str, trades: Path, part: slice = slice(None), pace: float = 0.0
) -> tuple[str, int]:
    """The records (``part`` of them) on md.ticks, ``pace`` seconds apart; the cluster id
    and how many records there are in all."""
    records = batches(trades)
    async with KafkaBus(KafkaSettings(bootstrap)) as bus:
        topic = bus.topic(TICKS)
        if pace:
            for batch in records[part]:
                await topic.publish(*TICKS_CODEC.record(batch))
                await asyncio.sleep(pace)
        else:
            await topic.publish_many([TICKS_CODEC.record(b) for b in records[part]])
        return bus.cluster_id, len(records)


def test_two_instances_one_killed_and_restarted_fire_what_one_clean_instance_fires(
    schemas: tuple[str, list[str]],
    fresh_topics: str,  # noqa: F811
    shared_data: Path,
    tmp_path: Path,
) -> None:
    trades = kraken_trades(shared_data)
    url, (clean, split) = schemas
    for schema in (clean, split):
        asyncio.run(create(url, schema, kraken_alerts()))
    cluster, total = asyncio.run(publish(fresh_topics, trades))
    log = tmp_path / "evaluators.log"

    one = [evaluate(url, clean, "g-clean", fresh_topics, log)]
    until("the clean run", lambda: covered(url, clean, f"g-clean@{cluster}") == total, one, log)
    stop(one, log)
    expected = fired(url, clean)
    assert len(expected) >= 3 * len(INSTRUMENTS)

    owner = f"g-two@{cluster}"
    two = [evaluate(url, split, "g-two", fresh_topics, log) for _ in range(2)]
    until("a third", lambda: covered(url, split, owner) >= total // 3, two, log)
    two[0].kill()  # SIGKILL, mid-replay
    two[0].wait(timeout=WITHIN_S)
    assert covered(url, split, owner) < total, "the replay ended before the kill"
    before = said(log, "g-two")
    two[0] = evaluate(url, split, "g-two", fresh_topics, log)
    until("the restart", lambda: said(log, "g-two") > before, two, log)
    until("the rest", lambda: covered(url, split, owner) == total, two, log)
    stop(two, log)
    assert fired(url, split) == expected
    epochs = query(url, split, "SELECT max(epoch) FROM main_api_evaluator_states")
    assert epochs[0][0] >= 2  # partitions changed hands


def test_members_joining_and_leaving_mid_stream_fire_what_one_clean_instance_fires(
    schemas: tuple[str, list[str]],
    fresh_topics: str,  # noqa: F811
    shared_data: Path,
    tmp_path: Path,
) -> None:
    trades = kraken_trades(shared_data)
    url, (clean, split) = schemas
    for schema in (clean, split):
        asyncio.run(create(url, schema, kraken_alerts()))
    total = len(batches(trades))
    cluster, _ = asyncio.run(publish(fresh_topics, trades, slice(total // 3)))
    log = tmp_path / "evaluators.log"
    owner = f"g-moves@{cluster}"

    members = [evaluate(url, split, "g-moves", fresh_topics, log)]
    until("the first third", lambda: covered(url, split, owner) >= total // 3, members, log)
    rest = threading.Thread(
        target=lambda: asyncio.run(publish(fresh_topics, trades, slice(total // 3, None), PACE_S))
    )
    rest.start()
    try:
        members.append(evaluate(url, split, "g-moves", fresh_topics, log))  # a rebalance
        epochs = (
            f"SELECT count(*) FROM main_api_evaluator_states WHERE epoch > 1 AND owner = '{owner}'"
        )
        until("a partition moved", lambda: query(url, split, epochs)[0][0] > 0, members, log)
        moved_mid_stream = rest.is_alive() and covered(url, split, owner) < total
        leaving_mid_stream = rest.is_alive()
        stop(members[:1], log)  # leaves: a second rebalance, the joiner takes everything
        until("the rest", lambda: covered(url, split, owner) == total, members[1:], log)
        stop(members[1:], log)
    finally:
        rest.join()
    assert moved_mid_stream, "the stream ended before the first rebalance"
    assert leaving_mid_stream, "the stream ended before the second rebalance"

    one = [evaluate(url, clean, "g-clean", fresh_topics, log)]
    until("the clean run", lambda: covered(url, clean, f"g-clean@{cluster}") == total, one, log)
    stop(one, log)
    expected = fired(url, clean)
    assert len(expected) >= 3 * len(INSTRUMENTS)
    assert fired(url, split) == expected
    told = log.read_text()
    assert "FencedError" not in told, told  # no round was fenced
    assert "restarting" not in told, told  # no loop started again
