"""A trace across processes: ``mdp gateway`` runs in a process of its own on Kafka, exporting
its spans over OTLP/HTTP to a collector this test serves; a tick batch this process publishes,
sampled, reaches it through the broker, and the gateway's ``gateway.send`` span is the child
of this process's ``ingest.publish`` span (the context went in the record's headers)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.publisher import FeedPublisher
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.telemetry.traces import batch, one, traced

WAIT_S = 60.0


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP collector on 127.0.0.1: every span received, as (service, name, trace id,
    span id, parent span id)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.spans: list[tuple[str, str, bytes, bytes, bytes]] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            for resource_spans in request.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                )
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.server.spans.append(
                            (service, span.name, span.trace_id, span.span_id, span.parent_span_id)
                        )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


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
                found: list[tuple[str, str, bytes, bytes, bytes]] = []
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
                    with collector.lock:
                        found = [
                            span
                            for span in collector.spans
                            if span[1] == "gateway.send" and published.get(span[4]) == span[2]
                        ]
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait()
        if gateway.stderr is not None:
            gateway.stderr.close()
    service, _, trace_id, _, parent = found[0]
    assert service == "gateway"
    assert len(trace_id) == 16
    assert len(parent) == 8
    # the gateway's own roots were not sampled (--trace-sample 0): only continued traces
    with collector.lock:
        assert all(span[4] for span in collector.spans)
