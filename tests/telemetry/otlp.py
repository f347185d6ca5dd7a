"""An OTLP/HTTP trace collector on 127.0.0.1 for the tests whose services run in processes of
their own (``--otlp-endpoint``): it keeps every span it receives."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

MAX_BODY = 16 * 1024 * 1024
"""The largest export request read (a batch of spans is kilobytes)."""


class Span(NamedTuple):
    service: str
    name: str
    trace_id: bytes
    span_id: bytes
    parent: bytes


class Collector(ThreadingHTTPServer):
    """Every span received, in :attr:`spans` (read under :attr:`lock`)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def named(self, name: str) -> list[Span]:
        with self.lock:
            return [span for span in self.spans if span.name == name]


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        if not 0 <= length <= MAX_BODY:
            self.send_error(413)
            return
        request = ExportTraceServiceRequest.FromString(self.rfile.read(length))
        received: list[Span] = []
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                received += (
                    Span(service, s.name, s.trace_id, s.span_id, s.parent_span_id)
                    for s in scope_spans.spans
                )
        with self.server.lock:
            self.server.spans += received
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def collecting() -> Iterator[Collector]:
    """A collector serving for the ``with`` block."""
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
