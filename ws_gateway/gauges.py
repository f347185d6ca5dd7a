"""The gateway's metrics: gauges read from its hub and sessions when Prometheus scrapes
(nothing on the fan-out path), and the closes counted by code as connections end."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from websockets.protocol import Protocol

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


def count_close(protocol: Protocol) -> None:
    """One connection ended: its code is the one of the side that closed first (the client's
    1000, the gateway's 4008...), 1006 when no close frame was sent or received."""
    GATEWAY_CLOSES.labels(str(close_code(protocol))).inc()


def close_code(protocol: Protocol) -> int:
    """The code of the first close frame of the connection, either way."""
    received, sent = protocol.close_rcvd, protocol.close_sent
    first = received if protocol.close_rcvd_then_sent or sent is None else sent
    return ABNORMAL_CLOSURE if first is None else int(first.code)
