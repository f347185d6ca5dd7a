"""Traces across processes: ``mdp gateway`` or the candle worker (``mdp worker``, either consumer)
runs in a process of its own on Kafka, exporting its spans over OTLP/HTTP to a collector this test
serves; a tick batch this process publishes, sampled, reaches it through the broker, and the
service's span is the child of this process's ``ingest.publish`` span (the context went in the
record's headers). The worker passes the context on in the headers of the candles it makes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.topics import CANDLES
from ingest.publisher import FeedPublisher
from machine import stop_process
from streams.bus import Record
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.streams.kafka.cluster import Cluster
from tests.telemetry.otlp import Collector, Span, collecting
from tests.telemetry.traces import batch, one, traced

WAIT_S = 60.0


@pytest.fixture
def collector() -> Iterator[Collector]:
    with collecting() as server:
        yield server


async def test_the_gateway_in_its_own_process_continues_the_batchs_trace(
    fresh_topics: str, collector: Collector
) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP": fresh_topics}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    gateway = subprocess.Popen(
        [sys.executable, "-m", "mdp.cli", "gateway", "--bus", "kafka", "--port", "0",
         "--trace-sample", "0", "--otlp-endpoint", collector.endpoint, "--log-format", "json"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        with traced(1.0) as exporter:
            async with KafkaBus(KafkaSettings(fresh_topics), create_topics=False) as bus:
                feed = FeedPublisher(bus)
                deadline, first = time.monotonic() + WAIT_S, 1
                found: list[Span] = []
                while not found:  # the gateway reads from the end: publish until it reads one
                    assert time.monotonic() < deadline, "no gateway.send span came"
                    assert gateway.poll() is None, gateway.stderr.read() if gateway.stderr else ""
                    await feed.run(one(batch(first)))
                    first += 10
                    await asyncio.sleep(0.5)
                    published = {
                        s.context.span_id.to_bytes(8, "big"): s.context.trace_id.to_bytes(16, "big")
                        for s in exporter.get_finished_spans()
                        if s.name == "ingest.publish" and s.context is not None
                    }
                    found = [
                        span
                        for span in collector.named("gateway.send")
                        if published.get(span.parent) == span.trace_id
                    ]
    finally:
        stop_process(gateway)
        if gateway.stderr is not None:
            gateway.stderr.close()
    service, _, trace_id, _, parent = found[0]
    assert service == "gateway"
    assert len(trace_id) == 16
    assert len(parent) == 8
    # the gateway's own roots were not sampled (--trace-sample 0): only continued traces
    with collector.lock:
        assert all(span.parent for span in collector.spans)


@pytest.mark.parametrize("consumer", ["faust", "batch"])
async def test_the_candle_worker_in_its_own_process_continues_the_trace_into_its_candles(
    fresh_topics: str, collector: Collector, tmp_path: Path, consumer: str
) -> None:
    with Cluster(fresh_topics, "", tmp_path) as cluster:
        worker = cluster.worker(
            "--database-url", "", "--trace-sample", "0", "--otlp-endpoint", collector.endpoint,
            "--consumer", consumer,
        )  # fmt: skip
        worker.wait_for("recovered", count=4)
        with traced(1.0) as exporter:
            async with KafkaBus(KafkaSettings(fresh_topics), create_topics=False) as bus:
                candles = bus.subscribe(f"trace-look-{cluster.suffix}", [CANDLES])
                try:
                    await FeedPublisher(bus).run(one(batch(1)))
                    (published,) = [
                        s for s in exporter.get_finished_spans() if s.name == "ingest.publish"
                    ]
                    assert published.context is not None
                    trace_id = published.context.trace_id
                    span_id = published.context.span_id.to_bytes(8, "big")
                    records: list[Record] = []
                    deadline = time.monotonic() + WAIT_S
                    while not (steps := _children(collector.named("engine.step"), span_id)):
                        assert time.monotonic() < deadline, f"no engine.step span:\n{worker.log}"
                        records += await candles.poll(timeout=0.5)
                    while not any(r.headers for r in records):
                        assert time.monotonic() < deadline, "no traced candle on md.candles"
                        records += await candles.poll(timeout=0.5)
                finally:
                    await candles.close()
    (step,) = steps
    assert step.service == "worker"
    assert int.from_bytes(step.trace_id, "big") == trace_id
    for record in (r for r in records if r.headers):
        (name, value), *_ = record.headers
        assert name == "traceparent"
        assert int(value.decode().split("-")[1], 16) == trace_id
    # the worker's own roots were not sampled (--trace-sample 0): only the continued trace
    assert all(span.parent for span in collector.spans)


def _children(spans: list[Span], parent: bytes) -> list[Span]:
    return [span for span in spans if span.parent == parent]
