"""Pre-trade risk: whether an account may place an order, before anything is reserved; and
the kill switch, which stops an account (:func:`kill`).

:func:`check` refuses with :class:`RiskRefused`, whose ``code`` is one of ``kill-switch``,
``order-rate``, ``no-price``, ``price-band``, ``max-notional``, ``max-position`` and
``buying-power`` (checked in that order, the first that fails is told) and whose ``field``
names the request's field at fault (``None`` when none is).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Final

import msgspec

from core.trading_events import KillSwitchSet, OrderSide, OrderType, TradingEvent
from trading.domain.accounts import MAX_RECENT_ORDERS, Account, reservation_for
from trading.domain.exact import exact
from trading.domain.orders import Order, OrderRequest, cancel

SECOND_NS: Final = 1_000_000_000
_HUNDRED: Final = Decimal(100)


class RiskRefused(Exception):  # noqa: N818 (the contract's name)
    def __init__(self, code: str, field: str | None, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.field = field
        self.message = message


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    """One deployment's limits, the same for every account."""

    max_order_notional: Decimal = Decimal(1_000_000)
    """Quantity times price (limit, stop or last) of one order, in its quote currency."""
    max_position: Decimal = Decimal(1_000)
    """The most base currency a position may hold, long or short, once the order fills."""
    price_band_pct: Decimal = Decimal(5)
    """How far from the last trade, in percent, a limit or stop price may be."""
    orders_per_second: int = 50
    """Orders an account may submit in any second."""
    kill_switch: bool = False
    """Block every new order of every account."""
    taker_fee: Decimal = Decimal("0.001")
    """The fee rate a buy's reservation allows for (the venue's taker fee)."""

    def __post_init__(self) -> None:
        if not 1 <= self.orders_per_second <= MAX_RECENT_ORDERS:
            raise ValueError(f"orders_per_second must be within 1..{MAX_RECENT_ORDERS}")
        for name in ("max_order_notional", "max_position", "price_band_pct"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.taker_fee < 1:
            raise ValueError("taker_fee must be within [0, 1)")


DEFAULT_LIMITS: Final = RiskLimits()


@exact
def check(
    request: OrderRequest,
    account: Account,
    last_price: Decimal | None,
    now_ns: int,
    limits: RiskLimits = DEFAULT_LIMITS,
) -> None:
    """Refuse ``request`` with :class:`RiskRefused` if ``account`` may not place it now.

    ``last_price`` is the instrument's last trade (``None``: none yet). The order rate counts
    the orders ``account`` has seen submitted in the second up to ``now_ns``, so call this
    before the account folds the request's own ``order-submitted``.
    """
    if limits.kill_switch or account.kill_switch:
        raise RiskRefused("kill-switch", None, "trading is stopped for this account")
    recent = sum(1 for ts in account.recent_orders if now_ns - ts < SECOND_NS)
    if recent >= limits.orders_per_second:
        raise RiskRefused(
            "order-rate", None, f"at most {limits.orders_per_second} orders per second"
        )
    if last_price is None and request.type is OrderType.MARKET:
        raise RiskRefused("no-price", "type", f"{request.instrument} has not traded yet")
    if last_price is not None:
        _check_band(request.price, "price", last_price, limits.price_band_pct)
        _check_band(request.stop_price, "stop_price", last_price, limits.price_band_pct)
    price = request.price or request.stop_price or last_price
    assert price is not None
    if request.quantity * price > limits.max_order_notional:
        raise RiskRefused(
            "max-notional",
            "quantity",
            f"{request.quantity} at {price} is above {limits.max_order_notional}",
        )
    held = account.position(request.instrument).quantity
    after = held + (request.quantity if request.side is OrderSide.BUY else -request.quantity)
    if abs(after) > limits.max_position:
        raise RiskRefused(
            "max-position", "quantity", f"the position would be {after}, past {limits.max_position}"
        )
    needed = reservation_for(request, last_price, limits.price_band_pct, limits.taker_fee)
    if needed.amount > account.available(needed.currency):
        raise RiskRefused(
            "buying-power",
            "quantity",
            f"needs {needed.amount} {needed.currency},"
            f" {account.available(needed.currency)} available",
        )


def _check_band(price: Decimal | None, field: str, last: Decimal, band_pct: Decimal) -> None:
    if price is not None and abs(price - last) * _HUNDRED > band_pct * last:
        raise RiskRefused(
            "price-band", field, f"{price} is more than {band_pct}% away from the last trade {last}"
        )


def kill(account: Account, orders: Iterable[Order], ts: int) -> list[TradingEvent]:
    """The events of pulling ``account``'s kill switch: it goes on (new orders are denied
    ``kill-switch``), each of its open ``orders`` is canceled and its reservation released."""
    events: list[TradingEvent] = [KillSwitchSet(account=account.account, on=True, ts=ts)]
    for order in orders:
        if order.account == account.account and order.is_open:
            events.append(cancel(order, ts, "kill switch"))
            released = account.release(order.order_id, ts)
            if released is not None:
                events.append(released)
    return events
