"""The paper venue's matcher: trades per second with orders working, one core.

Contenders, on the same synthetic trades (4 instruments) in one run:

- **per-tick floor**: a Python loop that only notes each trade's last price: what any
  per-trade Python code pays at the least, for scale;
- **matcher, no orders (baseline)**: :class:`trading.paper.matcher.PaperMatcher` keeping the
  queue model's look-back of every instrument: the ratios say what working orders cost;
- **matcher, orders never reached**: ``--orders`` resting limits and as many stops, all beyond
  the trades' range (a venue full of orders, most far from the price);
- **matcher, orders reached**: ``--orders`` resting limits spread over the trades' range,
  each of three times the median trade size, so that trades keep reaching, touching and
  filling them until the price has crossed most of them;
- **matcher, market orders**: one market order per instrument that no trade exhausts: a fill
  (with its fee) on every trade.

Each run submits its orders (counted in its time) and feeds every trade. Usage:
``python -m bench.paper [--ticks N] [--orders N] [--repeat N] [--smoke]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from decimal import Decimal

from bench.common import Figure, measure, print_table
from bench.engine import synthetic
from core.ticks import Tick
from core.trading_events import OrderSide, OrderSubmitted, OrderType, TimeInForce
from trading.paper.matcher import PaperMatcher

_HUGE = Decimal(10**9)


def _order(
    n: int,
    instrument: str,
    side: OrderSide,
    kind: OrderType,
    at: Decimal | None,
    quantity: Decimal = _HUGE,
) -> OrderSubmitted:
    return OrderSubmitted(
        account=1,
        order_id=f"o{n}",
        client_order_id=f"c{n}",
        instrument=instrument,
        side=side,
        type=kind,
        quantity=quantity,
        price=at if kind == OrderType.LIMIT else None,
        stop_price=at if kind == OrderType.STOP_MARKET else None,
        time_in_force=TimeInForce.GTC,
        ts=1,
    )


def ranges(ticks: Sequence[Tick]) -> dict[str, tuple[Decimal, Decimal]]:
    """Each instrument's lowest and highest trade price."""
    found: dict[str, tuple[Decimal, Decimal]] = {}
    for tick in ticks:
        low, high = found.get(tick.instrument, (tick.price, tick.price))
        found[tick.instrument] = (min(low, tick.price), max(high, tick.price))
    return found


def never_reached(ticks: Sequence[Tick], count: int) -> list[OrderSubmitted]:
    """``count`` limits and ``count`` stops beyond every trade: buys below the lowest price,
    sells above the highest; buy stops above, sell stops below (up to 10% away)."""
    orders: list[OrderSubmitted] = []
    spans = ranges(ticks)
    for n in range(count):
        instrument = sorted(spans)[n % len(spans)]
        low, high = spans[instrument]
        away = Decimal(n + 1) / (10 * count)
        below = (low * (1 - away)).quantize(Decimal("1e-8"))
        above = (high * (1 + away)).quantize(Decimal("1e-8"))
        buy = n % 2 == 0
        side = OrderSide.BUY if buy else OrderSide.SELL
        limit, stop = (below, above) if buy else (above, below)
        orders.append(_order(2 * n, instrument, side, OrderType.LIMIT, limit))
        orders.append(_order(2 * n + 1, instrument, side, OrderType.STOP_MARKET, stop))
    return orders


def reached(ticks: Sequence[Tick], count: int) -> list[OrderSubmitted]:
    """``count`` limits spread evenly over each instrument's range, buys and sells, each of
    three times the median trade size."""
    orders: list[OrderSubmitted] = []
    spans = ranges(ticks)
    quantity = 3 * sorted(tick.size for tick in ticks)[len(ticks) // 2]
    for n in range(count):
        instrument = sorted(spans)[n % len(spans)]
        low, high = spans[instrument]
        price = (low + (high - low) * Decimal(n % 97) / 96).quantize(Decimal("0.01"))
        side = OrderSide.BUY if n % 2 == 0 else OrderSide.SELL
        orders.append(_order(n, instrument, side, OrderType.LIMIT, price, quantity))
    return orders


def market(ticks: Sequence[Tick]) -> list[OrderSubmitted]:
    return [
        _order(n, instrument, OrderSide.BUY, OrderType.MARKET, None)
        for n, instrument in enumerate(sorted(ranges(ticks)))
    ]


def run(orders: Sequence[OrderSubmitted], ticks: Sequence[Tick]) -> int:
    """Submit ``orders`` and feed ``ticks``; the number of reports."""
    paper = PaperMatcher()
    reports = sum(len(paper.submit(order, 1)) for order in orders)
    for tick in ticks:
        reports += len(paper.on_tick(tick))
    return reports


def floor(ticks: Sequence[Tick]) -> int:
    last: dict[str, Decimal] = {}
    for tick in ticks:
        last[tick.instrument] = tick.price
    return len(last)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.paper", description=__doc__)
    parser.add_argument("--ticks", type=int, default=200_000, help="trades fed (200000)")
    parser.add_argument("--orders", type=int, default=1_000, help="orders working (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per contender (3)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (CI)")
    args = parser.parse_args(argv)
    total, count, repeat = (2_000, 20, 1) if args.smoke else (args.ticks, args.orders, args.repeat)
    ticks = [tick for batch in synthetic(total, 1_000) for tick in batch.ticks()]
    far, near, takers = never_reached(ticks, count), reached(ticks, count), market(ticks)
    baseline = measure("matcher, no orders (baseline)", len(ticks), lambda: run([], ticks), repeat)
    figures: list[Figure] = [
        measure("per-tick floor", len(ticks), lambda: floor(ticks), repeat),
        baseline,
        measure(f"matcher, {2 * count} never reached", len(ticks), lambda: run(far, ticks), repeat),
        measure(f"matcher, {count} reached", len(ticks), lambda: run(near, ticks), repeat),
        measure("matcher, market orders", len(ticks), lambda: run(takers, ticks), repeat),
    ]
    print_table(f"paper matcher, {len(ticks)} trades", figures, baseline, "trades/s")


if __name__ == "__main__":
    main()
