"""The gateway's metrics: gauges read from its hub and sessions when Prometheus scrapes
(nothing on the fan-out path), and the closes counted by code as connections end."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from telemetry.metrics import (
    GATEWAY_CLIENTS,
    GATEWAY_CLOSES,
    GATEWAY_LAGGING,
    GATEWAY_QUEUE_DEPTH,
    GATEWAY_SUBSCRIPTIONS,
)
from ws_gateway.hub import Hub
from ws_gateway.session import Session

ABNORMAL_CLOSURE = 1006
"""The code of a connection that ended without a close frame (RFC 6455, 7.1.5)."""


@contextlib.contextmanager
def watched(hub: Hub, sessions: Mapping[Any, Session]) -> Iterator[None]:
    """The gateway's gauges read ``hub`` and ``sessions`` for the ``with`` block."""

    def subscriptions() -> int:
        channels = list(hub.channels.values()) + list(hub.views.values())
        return sum(len(channel.subscribers) for channel in channels)

    def queued() -> int:
        return sum(len(session.outbox) for session in list(sessions.values()))

    def lagging() -> int:
        return sum(1 for session in list(sessions.values()) if session.outbox.pending)

    stops = [
        GATEWAY_CLIENTS.watch(lambda: len(sessions)),
        GATEWAY_SUBSCRIPTIONS.watch(subscriptions),
        GATEWAY_QUEUE_DEPTH.watch(queued),
        GATEWAY_LAGGING.watch(lagging),
    ]
    try:
        yield
    finally:
        for stop in stops:
            stop()


def count_close(code: int | None) -> None:
    """One connection ended with ``code`` (None: without a close frame, 1006)."""
    GATEWAY_CLOSES.labels(str(ABNORMAL_CLOSURE if code is None else code)).inc()
