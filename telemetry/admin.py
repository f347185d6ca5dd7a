"""The admin HTTP server: the process's metrics on ``/metrics``, ``/healthz`` and ``/readyz``,
on 127.0.0.1 by default.

A WSGI app served by prometheus-client's threading WSGI server (the one its own
``start_http_server`` uses) on a daemon thread, a thread per request: it answers while the
event loop is busy, and a scrape or a probe costs the loop nothing but the collectors' and
checks' reads. ``/metrics`` is prometheus-client's own WSGI app; ``/healthz`` and ``/readyz``
answer in the one shape of :mod:`web.health`, ``/readyz`` with the checks the process
registered in :data:`telemetry.readiness.READINESS`. Bind it to the pod network
(``--admin-host``) where a Prometheus or a kubelet outside the host asks; never to a public
address.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import CollectorRegistry

from telemetry.metrics import REGISTRY
from telemetry.readiness import READINESS, Readiness
from web.health import ALIVE, ALIVE_PATH, JSON, NO_STORE, READY_PATH, readiness

DEFAULT_HOST = "127.0.0.1"

StartResponse = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class AdminServer:
    """A running admin server: where it listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The metrics' URL."""
        return f"http://{self.host}:{self.port}/metrics"

    @property
    def ready_url(self) -> str:
        """The readiness probe's URL."""
        return f"http://{self.host}:{self.port}{READY_PATH}"


def admin_app(
    registry: CollectorRegistry = REGISTRY, checks: Readiness = READINESS
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app: ``/healthz``, ``/readyz``, and the metrics on every other path (as
    prometheus-client serves them)."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == ALIVE_PATH:
            return _answer(start_response, 200, ALIVE, NO_STORE)
        if path == READY_PATH:
            status, body, headers = readiness(checks.checks())
            return _answer(start_response, status, body, headers)
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


def _answer(
    start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]
) -> list[bytes]:
    reason = "OK" if status == 200 else "Service Unavailable"
    fields = [("Content-Type", JSON), ("Content-Length", str(len(body))), *headers.items()]
    start_response(f"{status} {reason}", fields)
    return [body]


class _Quiet(WSGIRequestHandler):
    """No access log line per probe or scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def admin_server(
    host: str = DEFAULT_HOST,
    port: int = 0,
    registry: CollectorRegistry = REGISTRY,
    checks: Readiness = READINESS,
) -> Iterator[AdminServer]:
    """Serve :func:`admin_app` on ``host:port`` (0: a free port) for the ``with`` block. A
    port in use raises :class:`OSError` here."""

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    server = make_server(host, port, admin_app(registry, checks), Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="admin", daemon=True)
    thread.start()
    try:
        yield AdminServer(host, int(server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
