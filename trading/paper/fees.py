"""The paper venue's fees: basis points of a fill's notional, rounded up.

Sizes, prices and notionals are computed in the domain's :data:`~trading.domain.exact.EXACT`
context, whose ``Inexact`` trap turns a silent rounding into an error; the fee's rounding is
the one deliberate rounding, and :func:`fee` says which way it goes.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Context, Decimal
from typing import Final

from trading.domain.exact import EXACT

_UP: Final = Context(prec=EXACT.prec, rounding=ROUND_CEILING)
_BPS: Final = Decimal(10_000)


def fee(price: Decimal, quantity: Decimal, bps: Decimal, places: int) -> Decimal:
    """``price * quantity * bps / 10000`` rounded up to ``places`` decimal places: the
    venue's favour, as venues round a fee (it is never under-charged)."""
    exact = EXACT.divide(EXACT.multiply(EXACT.multiply(price, quantity), bps), _BPS)
    return exact.quantize(Decimal(1).scaleb(-places), context=_UP)
