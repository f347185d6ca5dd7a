"""The trading read models: how fast the log is projected into them, beside the projector's
own floor.

Both contenders rebuild from the same log (``--orders`` limit buys of one account, each
submitted, reserved, accepted, filled in two parts and released: 6 events an order), on the
same PostgreSQL, in one run:

- **one INSERT per event (baseline)**: a read model whose projection inserts each event's
  kind into one table: what the projector costs (claims, batches, decoding, the position)
  with the least possible projection;
- **trading read models**: :mod:`trading.readmodels` (per event: read the rows it touches,
  the domain's fold, write what changed).

Events per second, median and best of ``--repeat`` rebuilds (each after a warm-up).

Usage: ``python -m bench.readmodels [--orders N] [--repeat N] [--database-url URL] [--smoke]``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from decimal import Decimal

from psycopg import Cursor
from psycopg.rows import DictRow

from bench.common import Figure, measure, print_table, scratch_database
from core import trading_events as te
from trading.domain.accounts import Account, reservation_for
from trading.domain.orders import Order, OrderRequest
from trading.readmodels.tables import model
from trading.store.aggregates import Versioned
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.projector import Projector, ReadModel, each
from trading.store.wire import EVENT_CODEC

ACCOUNT = 1
INSTRUMENT = "KRAKEN:XBTUSDT"


def orders(count: int) -> Iterator[te.TradingEvent]:
    """A deposit, then each order's life in the order the saga stores it."""
    account = Account(account=ACCOUNT)
    deposit = te.FundsDeposited(account=ACCOUNT, currency="USDT", amount=Decimal(10**9), ts=1)
    account = account.apply(deposit)
    yield deposit
    for n in range(count):
        ts, order_id = 10 + n, f"o-{n}"
        request = OrderRequest(
            account=ACCOUNT, client_order_id=f"c-{n}", instrument=INSTRUMENT,
            side=te.OrderSide.BUY, type=te.OrderType.LIMIT, quantity=Decimal("0.02"),
            price=Decimal("64000.5"),
        )  # fmt: skip
        submitted = request.submitted(order_id, ts)
        held = reservation_for(request, None, Decimal(5), Decimal("0.001"))
        reserved = te.FundsReserved(
            account=ACCOUNT, order_id=order_id, currency=held.currency, amount=held.amount, ts=ts
        )
        order = Order.submitted(submitted)
        accepted = te.OrderAccepted(account=ACCOUNT, order_id=order_id, venue_order_id="v", ts=ts)
        fills = [
            te.OrderFilled(
                account=ACCOUNT, order_id=order_id, fill_id=f"f-{part}", instrument=INSTRUMENT,
                side=te.OrderSide.BUY, price=Decimal("64000"), quantity=Decimal("0.01"),
                fee=Decimal("0.64"), fee_currency="USDT", liquidity=te.Liquidity.TAKER,
                trade_id=n, ts=ts,
            )
            for part in (1, 2)
        ]  # fmt: skip
        life: list[te.TradingEvent] = [submitted, reserved, accepted, *fills]
        for event in life[1:]:
            account = account.apply(event)
            order = order.apply(event) if isinstance(event, te.ORDER_EVENTS) else order
        released = account.release(order_id, ts)
        assert released is not None
        assert order.status is te.OrderStatus.FILLED
        account = account.apply(released)
        yield from (*life, released)


LEDGER = "CREATE TABLE IF NOT EXISTS ledger (n bigserial PRIMARY KEY, kind text NOT NULL);"


def _ledger(curs: Cursor[DictRow], item: Versioned[te.TradingEvent]) -> None:
    curs.execute("INSERT INTO ledger (kind) VALUES (%s)", (te.kind_of(item.event),))


def bench(url: str, count: int, repeat: int) -> list[Figure]:
    with Database(StoreSettings(url)) as database:
        database.create_tables()
        events = EventStore(database, EVENT_CODEC)
        versions: dict[str, int] = {}
        for event in orders(count):
            aggregate = (
                f"order:{ACCOUNT}:{event.order_id}"
                if isinstance(event, te.ORDER_EVENTS)
                else f"account:{ACCOUNT}"
            )
            versions[aggregate] = versions.get(aggregate, 0) + 1
            events.append(aggregate, versions[aggregate] - 1, [event])
        total = sum(versions.values())
        models: list[tuple[str, ReadModel[te.TradingEvent]]] = [
            ("one INSERT per event (baseline)", ReadModel("bench_ledger", LEDGER, each(_ledger))),
            ("trading read models", model("bench_trading")),
        ]
        return [
            measure(name, total, Projector(database, events, made).rebuild, repeat)
            for name, made in models
        ]


def main(argv: Sequence[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", metavar="URL", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--smoke", action="store_true", help="tiny inputs (for CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.orders, args.repeat = 20, 1
    with scratch_database(args.database_url) as url:
        figures = bench(url, args.orders, args.repeat)
    title = f"read-model rebuild, {figures[0].items:,} events ({args.orders:,} orders)"
    print_table(title, figures, figures[0], "events/s")
    return figures


if __name__ == "__main__":
    main()
