"""The admin HTTP server: the process's metrics on ``/metrics``, on 127.0.0.1 by default.

prometheus-client's own server (a WSGI server on a daemon thread, a thread per scrape): it
answers while the event loop is busy, and a scrape costs the loop nothing but the collectors'
reads. Bind it to the pod network (``--admin-host``) where a Prometheus outside the host
scrapes; never to a public address.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

from telemetry.metrics import REGISTRY

DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class AdminServer:
    """A running admin server: where it listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The metrics' URL."""
        return f"http://{self.host}:{self.port}/metrics"


@contextlib.contextmanager
def admin_server(
    host: str = DEFAULT_HOST, port: int = 0, registry: CollectorRegistry = REGISTRY
) -> Iterator[AdminServer]:
    """Serve ``registry`` on ``host:port`` (0: a free port) for the ``with`` block. A port in
    use raises :class:`OSError` here."""
    server, thread = start_http_server(port, host, registry)
    try:
        yield AdminServer(host, _port(server))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _port(server: WSGIServer) -> int:
    return int(server.server_address[1])
