"""A place or amend request's JSON body into the domain's request (sans-I/O).

Amounts may be JSON strings (``"0.5"``, exact: what we advise) or JSON numbers, read as exact
decimals of their text, never through a float. Every refusal is the domain's
:class:`~trading.domain.orders.OrderInvalid`, naming the field with our code; the account is
never a field: it comes from the token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final

import msgspec

from core.numbers import scale_of
from core.trading_events import OrderSide, OrderType, TimeInForce
from trading.domain.orders import AmendRequest, OrderInvalid, OrderRequest
from web.bodies import json_object

PLACE_FIELDS: Final = (
    "client_order_id", "instrument", "side", "type", "quantity", "price", "stop_price",
    "time_in_force",
)  # fmt: skip
AMEND_FIELDS: Final = ("quantity", "price", "stop_price")
DEPOSIT_FIELDS: Final = ("currency", "amount")
MAX_DEPOSIT: Final = Decimal(10) ** 9
"""The largest paper deposit (paper money, but a bounded one)."""
MAX_DEPOSIT_SCALE: Final = 8
_CURRENCY: Final = re.compile(r"[A-Z0-9]{1,16}")
_REQUIRED: Final = ("client_order_id", "instrument", "side", "type", "quantity")
_AMOUNTS: Final = frozenset({"quantity", "price", "stop_price", "amount"})
_ENUMS: Final[dict[str, type[StrEnum]]] = {
    "side": OrderSide, "type": OrderType, "time_in_force": TimeInForce,
}  # fmt: skip
_decoder: Final = msgspec.json.Decoder(float_hook=Decimal)


def place_request(account: int, body: bytes) -> OrderRequest:
    """The order ``body`` asks for, in ``account``."""
    fields = _fields(body, PLACE_FIELDS)
    for name in _REQUIRED:
        if name not in fields:
            raise OrderInvalid(name, "required", f"an order needs {name}")
    return OrderRequest(account=account, **fields)


def amend_request(account: int, order_id: str, body: bytes) -> AmendRequest:
    """The change ``body`` asks of the order ``order_id``."""
    return AmendRequest(account=account, order_id=order_id, **_fields(body, AMEND_FIELDS))


class DepositInvalid(OrderInvalid):
    """A deposit body refused: ``field`` names the field, ``code`` is one of the order
    body's codes (``required``, ``forbidden``, ``format``, ``not-a-number``, ``not-positive``,
    ``too-large``, ``too-precise``)."""


@dataclass(frozen=True, slots=True)
class Deposit:
    """Paper money asked for: ``amount`` of ``currency``."""

    currency: str
    amount: Decimal


def deposit_request(body: bytes) -> Deposit:
    """The deposit ``body`` asks for: ``currency`` (``USD``, ``USDT``: 1 to 16 capitals or
    digits) and a positive ``amount`` of at most :data:`MAX_DEPOSIT` with at most
    :data:`MAX_DEPOSIT_SCALE` decimal places."""
    try:
        fields = _fields(body, DEPOSIT_FIELDS)
    except OrderInvalid as exc:
        raise DepositInvalid(exc.field, exc.code, exc.message) from None
    for name in DEPOSIT_FIELDS:
        if name not in fields:
            raise DepositInvalid(name, "required", f"a deposit needs {name}")
    currency, amount = fields["currency"], fields["amount"]
    if not isinstance(currency, str) or _CURRENCY.fullmatch(currency) is None:
        raise DepositInvalid("currency", "format", "1 to 16 capital letters or digits (USD)")
    if not amount.is_finite() or amount <= 0:
        raise DepositInvalid("amount", "not-positive", f"must be positive, got {amount}")
    if amount > MAX_DEPOSIT:
        raise DepositInvalid("amount", "too-large", f"at most {MAX_DEPOSIT:,}, got {amount}")
    if scale_of(amount) > MAX_DEPOSIT_SCALE:
        raise DepositInvalid(
            "amount", "too-precise", f"at most {MAX_DEPOSIT_SCALE} decimal places, got {amount}"
        )
    return Deposit(currency, amount)


def _fields(body: bytes, allowed: tuple[str, ...]) -> dict[str, Any]:
    return json_object(body, allowed, OrderInvalid, decoder=_decoder, value=_value)


def _value(name: str, value: object) -> object:
    """``value`` typed as the domain checks it (what cannot be typed is left for its check
    to name)."""
    if name in _AMOUNTS:
        return _amount(name, value)
    kind = _ENUMS.get(name)
    if kind is not None and isinstance(value, str) and value in kind._value2member_map_:
        return kind(value)
    return value


def _amount(name: str, value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and len(value) <= 64:
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise OrderInvalid(name, "not-a-number", 'must be a decimal number (a string such as "0.5")')
