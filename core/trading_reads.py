"""What the gateway's private channels read of the trading read models, and how they present
what they send.

The gateway never imports the trading service: it is handed an implementation of
:class:`TradingReads` (``trading.readmodels.snapshots.AccountSnapshots`` over the read-model
tables) and asks it for an :class:`AccountSnapshot` when a client subscribes to ``orders``,
``fills`` or ``positions`` (``docs/protocol.md``, "Private channels"). A snapshot is read in
one transaction together with the projector's position, and says which notification id and
which version of the account's stream it is current to: the gateway drops the live records of
``trading.events`` at or below it and sends every one after it once.

The JSON of a fill, an order event and a position is built here, once for the gateway and the
trading API: the msgspec encoding of the core types (amounts as decimal strings, times in
epoch nanoseconds), the same objects ``GET /trading/v1/fills`` and ``/positions`` carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

import msgspec

from core.positions import Position
from core.trading_events import OrderEvent, OrderFilled

MAX_SNAPSHOT: Final = 1000
"""The most orders (besides the open ones) and fills one snapshot holds."""

_encoder: Final = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """One account's read models as of one position of the event log.

    ``notification_id`` is the id of the account's newest event the snapshot holds (0: none)
    and ``version`` that event's version in the account's stream (``account:<id>``, gapless
    from 1): live records at or below them are in the snapshot already.
    """

    account: int
    notification_id: int
    version: int
    orders: list[bytes] = field(default_factory=list)
    """The open orders and the newest others, by the account's order number, each the JSON
    ``GET /trading/v1/orders/{id}`` returns as its ``order``."""
    fills: list[OrderFilled] = field(default_factory=list)
    """The newest fills, oldest first."""
    positions: list[Position] = field(default_factory=list)
    """Every position of the account, by instrument."""


class TradingReads(Protocol):
    """The read side the gateway is given (by injection: ``mdp`` wires it)."""

    async def account_snapshot(self, account: int, limit: int) -> AccountSnapshot:
        """``account``'s snapshot with at most ``limit`` recent orders besides the open ones
        and ``limit`` newest fills (``limit`` within 0..:data:`MAX_SNAPSHOT`). Raises when the
        database cannot answer (the gateway answers ``unavailable``)."""
        ...


def event_json(event: OrderEvent) -> bytes:
    """An order event as JSON: ``{"kind":"order-accepted", ...its fields}``."""
    return _encoder.encode(event)


def fill_json(fill: OrderFilled) -> bytes:
    """A fill as JSON: the ``fill`` of a ``GET /trading/v1/fills`` item."""
    return _encoder.encode(fill)


def position_json(position: Position) -> bytes:
    """A position as JSON: the ``position`` of a ``GET /trading/v1/positions`` item."""
    return _encoder.encode(position)
