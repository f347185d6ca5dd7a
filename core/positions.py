"""A position in one instrument and how a fill moves it: one implementation for the trading
domain (:mod:`trading.domain.accounts` folds fills into an account) and the gateway (its
``positions`` channel folds each live fill onto the position of its snapshot).

A position is signed (a sell of base currency bought on another instrument makes it negative)
and carries its average price and realised P&L in the quote currency; fees are counted apart.
Amounts are exact (:mod:`core.exact`); only an average price, a quotient, is rounded, to
:data:`PRICE_DIGITS` significant digits.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final

import msgspec

from core.exact import exact
from core.trading_events import OrderSide

PRICE_DIGITS: Final = 34
_PRICES: Final = Context(prec=PRICE_DIGITS, rounding=ROUND_HALF_EVEN)
_ZERO: Final = Decimal(0)


class Position(msgspec.Struct, frozen=True, kw_only=True):
    instrument: str
    quantity: Decimal = _ZERO
    """Signed: positive long, negative short."""
    average_price: Decimal = _ZERO
    realised: Decimal = _ZERO
    """Realised P&L in the quote currency, fees not counted."""

    @exact
    def traded(self, side: OrderSide, quantity: Decimal, price: Decimal) -> Position:
        """This position after a fill: what reduces it realises P&L at its average price,
        what extends it (or turns it over) moves the average."""
        signed = quantity if side is OrderSide.BUY else -quantity
        held, average, realised = self.quantity, self.average_price, self.realised
        if held and (held > 0) != (signed > 0):
            closed = min(abs(held), quantity)
            realised += closed * (price - average) * (1 if held > 0 else -1)
            left = held + signed
            if left == 0 or (left > 0) == (held > 0):
                average = average if left else _ZERO
            else:
                average = price
            return msgspec.structs.replace(
                self, quantity=left, average_price=average, realised=realised
            )
        total = held + signed
        average = _PRICES.divide(held * average + signed * price, total)
        return msgspec.structs.replace(self, quantity=total, average_price=average)


@exact
def unrealised(position: Position, last_price: Decimal) -> Decimal:
    """The P&L of ``position`` marked to ``last_price``, in the quote currency."""
    return position.quantity * (last_price - position.average_price)
