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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Setting:
    """A test's Kraken trades, database, its clean and its split run's schemas (each with
    the Kraken alerts), the broker and the evaluators' log."""

    trades: Path
    url: str
    clean: str
    split: str
    bootstrap: str
    log: Path

    def clean_run(self, cluster: str, total: int) -> list[tuple[Any, ...]]:
        """What one instance alone fires on the ``total`` records (at least three a copy)."""
        one = [evaluate(self.url, self.clean, "g-clean", self.bootstrap, self.log)]
        owner = f"g-clean@{cluster}"
        until("the clean run", lambda: covered(self.url, self.clean, owner) == total, one, self.log)
        stop(one, self.log)
        expected = fired(self.url, self.clean)
        assert len(expected) >= 3 * len(INSTRUMENTS)
        return expected


@pytest.fixture
def setting(
    schemas: tuple[str, list[str]],
    fresh_topics: str,  # noqa: F811
    shared_data: Path,
    tmp_path: Path,
) -> Setting:
    trades = kraken_trades(shared_data)
    url, (clean, split) = schemas
    for schema in (clean, split):
        asyncio.run(create(url, schema, kraken_alerts()))
    return Setting(trades, url, clean, split, fresh_topics, tmp_path / "evaluators.log")


def test_two_instances_one_killed_and_restarted_fire_what_one_clean_instance_fires(
    setting: Setting,
) -> None:
    url, split, log, bootstrap = setting.url, setting.split, setting.log, setting.bootstrap
    cluster, total = asyncio.run(publish(bootstrap, setting.trades))
    expected = setting.clean_run(cluster, total)

    owner = f"g-two@{cluster}"
    two = [evaluate(url, split, "g-two", bootstrap, log) for _ in range(2)]
    until("a third", lambda: covered(url, split, owner) >= total // 3, two, log)
    two[0].kill()  # SIGKILL, mid-replay
    two[0].wait(timeout=WITHIN_S)
    assert covered(url, split, owner) < total, "the replay ended before the kill"
    before = said(log, "g-two")
    two[0] = evaluate(url, split, "g-two", bootstrap, log)
    until("the restart", lambda: said(log, "g-two") > before, two, log)
    until("the rest", lambda: covered(url, split, owner) == total, two, log)
    stop(two, log)
    assert fired(url, split) == expected
    epochs = query(url, split, "SELECT max(epoch) FROM main_api_evaluator_states")
    assert epochs[0][0] >= 2  # partitions changed hands


def test_members_joining_and_leaving_mid_stream_fire_what_one_clean_instance_fires(
    setting: Setting,
) -> None:
    url, split, log, bootstrap = setting.url, setting.split, setting.log, setting.bootstrap
    trades = setting.trades
    total = len(batches(trades))
    cluster, _ = asyncio.run(publish(bootstrap, trades, slice(total // 3)))
    owner = f"g-moves@{cluster}"

    members = [evaluate(url, split, "g-moves", bootstrap, log)]
    until("the first third", lambda: covered(url, split, owner) >= total // 3, members, log)
    rest = threading.Thread(
        target=lambda: asyncio.run(publish(bootstrap, trades, slice(total // 3, None), PACE_S))
    )
    rest.start()
    try:
        members.append(evaluate(url, split, "g-moves", bootstrap, log))  # a rebalance
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

    assert fired(url, split) == setting.clean_run(cluster, total)
    told = log.read_text()
    assert "FencedError" not in told, told  # no round was fenced
    assert "restarting" not in told, told  # no loop started again
