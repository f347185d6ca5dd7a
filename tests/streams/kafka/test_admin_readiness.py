"""``/readyz`` on the admin port of ``mdp writer`` and ``mdp worker`` (either consumer), end to end:
503 while the database is away (``database unavailable``) or the broker is (``bus unreachable``),
200 once it is back; the process keeps running through both. The worker's consumer lag is on its
``/metrics``."""

from __future__ import annotations

import contextlib
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.topics import TICKS
from streams.kafka.launcher import LocalKafka
from tests.storage.stoppable import StoppablePostgres
from tests.streams.kafka.cluster import Cluster, Service, wait_until
from tests.streams.kafka.conftest import mdp
from tests.telemetry.probe import get

STALE = "2"
WAIT = 60.0
CONSUMERS = pytest.mark.parametrize("consumer", ["faust", "batch"])
"""Both ways of reading md.ticks (``mdp worker --consumer``)."""


def ready_url(service: Service) -> str:
    service.wait_for("metrics: http://")
    found = re.search(r"metrics: (http://\S+)/metrics", service.log)
    assert found is not None, service.log
    return found.group(1) + "/readyz"


def answers(url: str, status: int, check: str = "", says: str = "") -> tuple[int, dict[str, Any]]:
    """Wait for ``status`` at ``url`` (with ``check`` saying ``says``, if given); the answer."""

    def holds() -> bool:
        got, body = get(url)
        return got == status and (not check or body["checks"].get(check) == says)

    wait_until(holds, f"{status} ({check} {says}) from {url}", WAIT)
    return get(url)


def start_writer(cluster: Cluster) -> Service:
    return cluster.start(
        "writer", "writer", "--group", f"writer-{cluster.suffix}", "--batch", "50",
        "--admin-port", "0", "--ready-stale", STALE,
    )  # fmt: skip


def test_the_writer_is_not_ready_while_its_database_is_away_and_ready_once_back(
    fresh_topics: str, stoppable_postgres: StoppablePostgres, tmp_path: Path
) -> None:
    url = stoppable_postgres.database()
    with Cluster(fresh_topics, url, tmp_path) as cluster:
        writer = start_writer(cluster)
        ready = ready_url(writer)
        assert answers(ready, 200) == (
            200,
            {"status": "ready", "checks": {"database": "ok", "bus": "ok", "lag": "ok"}},
        )
        stoppable_postgres.stop()
        fed = cluster.ingest("--duration", "1", "--rate", "20")
        assert fed.returncode == 0, fed.stderr
        # a write waiting for the database may first show as "bus stalled" (the loop is
        # held in that call for longer than --ready-stale); then the write fails
        _, body = answers(ready, 503, "database", "unavailable")
        assert "database unavailable" in body["detail"]
        assert writer.process.poll() is None, writer.log
        stoppable_postgres.start()
        assert answers(ready, 200)[1]["checks"]["database"] == "ok"
        assert writer.stop() == 0


@contextlib.contextmanager
def broker_of_its_own(
    tmp_path: Path, database_url: str
) -> Iterator[tuple[Cluster, Callable[[], None], Callable[[], None]]]:
    """A broker of this test's own (one partition per topic), a cluster on it, and the
    functions that stop the broker and start it again on the same port."""
    kafka = ["--data-dir", str(tmp_path / "kafka")]
    started = mdp("kafka", "start", *kafka, "--port", "0", "--partitions", "1")
    assert started.returncode == 0, started.stderr + started.stdout

    def stop() -> None:
        assert mdp("kafka", "stop", *kafka).returncode == 0

    def start() -> None:
        again = mdp("kafka", "start", *kafka, "--partitions", "1")  # the same port
        assert again.returncode == 0, again.stderr + again.stdout

    try:
        info = LocalKafka(tmp_path / "kafka").status()
        assert info is not None
        topics = mdp("kafka", "topics", "--bootstrap", info.bootstrap, "--partitions", "1")
        assert topics.returncode == 0, topics.stderr + topics.stdout
        with Cluster(info.bootstrap, database_url, tmp_path) as cluster:
            yield cluster, stop, start
    finally:
        mdp("kafka", "stop", *kafka)


@CONSUMERS
def test_the_writer_and_the_worker_are_not_ready_while_their_broker_is_away_and_ready_once_back(
    migrated_database: str, tmp_path: Path, consumer: str
) -> None:
    with broker_of_its_own(tmp_path, migrated_database) as (cluster, stop, start):
        writer = start_writer(cluster)
        worker = cluster.worker("--admin-port", "0", "--ready-stale", STALE, "--consumer", consumer)
        ready = {"writer": ready_url(writer), "worker": ready_url(worker)}
        worker.wait_for("recovered")
        assert answers(ready["writer"], 200)[1]["checks"]["bus"] == "ok"
        assert answers(ready["worker"], 200)[1]["checks"] == {"bus": "ok", "lag": "ok"}
        stop()
        assert answers(ready["writer"], 503) == (
            503,
            {
                "status": "unavailable",
                "detail": "bus unreachable",
                "checks": {"database": "ok", "bus": "unreachable", "lag": "ok"},
            },
        )
        # the worker's timer asks the broker where the partitions end (within 2 s): a round
        # may come late by that much, so the answer waited for is "unreachable"
        assert answers(ready["worker"], 503, "bus", "unreachable")[1] == {
            "status": "unavailable",
            "detail": "bus unreachable",
            "checks": {"bus": "unreachable", "lag": "ok"},
        }
        start()
        assert answers(ready["writer"], 200)[1]["checks"]["bus"] == "ok"
        assert answers(ready["worker"], 200)[1]["checks"] == {"bus": "ok", "lag": "ok"}
        assert writer.process.poll() is None, writer.log
        assert worker.process.poll() is None, worker.log


def lag_samples(metrics_url: str, group: str) -> dict[str, float]:
    """``mdp_consumer_lag_records`` of ``group`` on ``md.ticks`` by partition, as scraped."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    return {
        sample.labels["partition"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "mdp_consumer_lag_records"
        for sample in family.samples
        if sample.labels["group"] == group and sample.labels["topic"] == TICKS
    }


@CONSUMERS
def test_the_worker_reports_its_lag_and_is_ready_once_caught_up(
    fresh_topics: str, tmp_path: Path, consumer: str
) -> None:
    with Cluster(fresh_topics, "", tmp_path) as cluster:
        worker = cluster.worker("--admin-port", "0", "--consumer", consumer)  # journal only
        ready = ready_url(worker)
        worker.wait_for("recovered", count=4)
        fed = cluster.ingest("--duration", "1", "--rate", "20")
        assert fed.returncode == 0, fed.stderr
        metrics = ready.removesuffix("/readyz") + "/metrics"
        group = f"engine-{cluster.suffix}"
        wait_until(
            lambda: (lags := lag_samples(metrics, group)) != {} and set(lags.values()) == {0.0},
            "the worker's lag samples, 0 once caught up",
            WAIT,
        )
        assert set(lag_samples(metrics, group)) <= {str(p) for p in range(4)}
        assert answers(ready, 200) == (
            200,
            {"status": "ready", "checks": {"bus": "ok", "lag": "ok"}},
        )
