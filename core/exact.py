"""Exact decimal arithmetic for trading amounts: the trading domain and the gateway's positions.

Python's default decimal context keeps 28 significant digits and rounds silently past them; a
price of 15 integer digits and 18 decimal places already has 33. The domain computes in
:data:`EXACT` instead: wide enough for any product and sum of the amounts an event carries,
and an inexact result raises (``decimal.Inexact``) rather than rounds. The only rounding is
explicit: an average price (:mod:`core.positions`) and a reservation rounded up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Context as _Context
from decimal import DivisionByZero, Inexact, InvalidOperation, Overflow, localcontext
from typing import Final, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

EXACT: Final = _Context(prec=200, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])


def exact(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` computing in :data:`EXACT`."""

    @functools.wraps(function)
    def in_exact(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext(EXACT):
            return function(*args, **kwargs)

    return in_exact
