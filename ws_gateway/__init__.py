"""The WebSocket gateway: live candles and ticks pushed to browsers and bots.

``Gateway(bus, store, settings)`` is the whole service (:mod:`ws_gateway.server`); the
protocol is ``docs/protocol.md``. Inside: the wire format (:mod:`~ws_gateway.wire`), one
connection's request checks (:mod:`~ws_gateway.protocol`), channel state
(:mod:`~ws_gateway.channels`), the fan-out (:mod:`~ws_gateway.hub`), per-client queues
(:mod:`~ws_gateway.outbox`), sessions (:mod:`~ws_gateway.session`), principals
(:mod:`~ws_gateway.auth`), access tokens (:mod:`~ws_gateway.tokens`), delayed views
(:mod:`~ws_gateway.delay`) and who may connect (:mod:`~ws_gateway.admission`).
"""

from ws_gateway.auth import (
    ANONYMOUS,
    AuthenticationError,
    Authenticator,
    Principal,
    StaticTokens,
)
from ws_gateway.server import Gateway, GatewayStats
from ws_gateway.settings import DEFAULT_PORT, GatewaySettings, Limits
from ws_gateway.wire import CloseCode, ErrorCode

__all__ = [
    "ANONYMOUS",
    "DEFAULT_PORT",
    "AuthenticationError",
    "Authenticator",
    "CloseCode",
    "ErrorCode",
    "Gateway",
    "GatewaySettings",
    "GatewayStats",
    "Limits",
    "Principal",
    "StaticTokens",
]
