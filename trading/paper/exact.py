"""Exact decimal arithmetic for the matcher: any operation that would round raises.

The default :mod:`decimal` context rounds to 28 digits without a word; sizes, prices and
notionals here go through :data:`EXACT`, whose ``Inexact`` trap turns a silent rounding into
an error. The one deliberate rounding, the fee's, is :func:`fee` and says which way it goes.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Context, Decimal, Inexact, InvalidOperation, Overflow

EXACT = Context(prec=200, traps=[Inexact, InvalidOperation, Overflow])
"""Enough digits for a price times a quantity times a fee rate of any amount an event may
carry (30 digits before the point and 36 after, each)."""
_ROUNDING = Context(prec=200, traps=[InvalidOperation, Overflow])

_BPS = Decimal(10_000)


def fee(price: Decimal, quantity: Decimal, bps: Decimal, places: int) -> Decimal:
    """``price * quantity * bps / 10000`` rounded up to ``places`` decimal places: the
    venue's favour, as venues round a fee (it is never under-charged)."""
    notional = EXACT.multiply(price, quantity)
    exact = EXACT.divide(EXACT.multiply(notional, bps), _BPS)
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING, context=_ROUNDING)
