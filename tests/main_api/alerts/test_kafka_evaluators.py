"""``mdp alerts evaluate`` on a real Kafka broker (real PostgreSQL): two instances in one
group share the partitions of the Kraken trades; one is killed with SIGKILL mid-replay and
started again; every alert fires exactly what one clean instance fires."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
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


def evaluate(
    url: str, schema: str, group: str, bootstrap: str, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "mdp.cli", "alerts", "evaluate", "--database-url", url,
             "--schema", schema, "--group", group, "--batch", "2", "--bootstrap", bootstrap],
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


async def publish(bootstrap: str, trades: Path) -> tuple[str, int]:
    """The records on md.ticks; the cluster id and how many."""
    records = batches(trades)
    async with KafkaBus(KafkaSettings(bootstrap)) as bus:
        await bus.topic(TICKS).publish_many([TICKS_CODEC.record(b) for b in records])
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
