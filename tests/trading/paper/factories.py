"""Orders and trades for the paper venue's tests, with defaults for what a test does not name."""

from __future__ import annotations

from decimal import Decimal

from core.ticks import Side, Tick
from core.trading_events import (
    OrderFilled,
    OrderSide,
    OrderSubmitted,
    OrderType,
    TimeInForce,
)
from trading.paper.venue import VenueReport

INSTRUMENT = "KRAKEN:XBTUSDT"
ACCOUNT = 7
T0 = 1_762_795_000_000_000_000
"""A time before every trade of these tests (UTC nanoseconds)."""
SECOND = 1_000_000_000


def order(
    order_id: str,
    side: str = "buy",
    quantity: str = "1",
    price: str | None = None,
    *,
    type: OrderType | None = None,
    stop_price: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    instrument: str = INSTRUMENT,
    account: int = ACCOUNT,
) -> OrderSubmitted:
    """A limit order when ``price`` is given, a stop-market when ``stop_price`` is, else a
    market order."""
    if type is None:
        type = (
            OrderType.LIMIT
            if price is not None
            else OrderType.STOP_MARKET
            if stop_price is not None
            else OrderType.MARKET
        )
    return OrderSubmitted(
        account=account,
        order_id=order_id,
        client_order_id=f"c-{order_id}",
        instrument=instrument,
        side=OrderSide(side),
        type=type,
        quantity=Decimal(quantity),
        price=None if price is None else Decimal(price),
        stop_price=None if stop_price is None else Decimal(stop_price),
        time_in_force=tif,
        ts=T0,
    )


def trade(
    trade_id: int, price: str, size: str, at: int | None = None, instrument: str = INSTRUMENT
) -> Tick:
    """A trade at ``T0 + at`` seconds (``at`` defaults to ``trade_id``)."""
    ts = T0 + (trade_id if at is None else at) * SECOND
    return Tick(
        instrument=instrument,
        trade_id=trade_id,
        price=Decimal(price),
        size=Decimal(size),
        side=Side.UNKNOWN,
        ts_event=ts,
        ts_recv=ts,
    )


def plain(value: Decimal) -> str:
    """``value`` as text without trailing zeros or an exponent (``0.10`` -> ``0.1``)."""
    return format(value.normalize(), "f")


def fills(reports: list[VenueReport]) -> list[tuple[str, int, str, str, str]]:
    """The fills among ``reports`` as (order id, trade id, price, quantity, liquidity)."""
    return [
        (r.order_id, r.trade_id, plain(r.price), plain(r.quantity), r.liquidity.value)
        for r in reports
        if isinstance(r, OrderFilled)
    ]


def kinds(reports: list[VenueReport]) -> list[tuple[str, str]]:
    """Every report as (its type's name, order id)."""
    return [(type(r).__name__, r.order_id) for r in reports]
