"""The account aggregate: one account and its orders, the fold of one event stream.

An account and its orders change together (a fill moves the order and the cash; a submission
reserves), so they are one aggregate, ``account:<id>``: each step of an order's saga is one
append with one version check, and no step ever needs two aggregates to agree. The state is
the domain's own folds: :class:`~trading.domain.accounts.Account` takes every event,
each order's :class:`~trading.domain.orders.Order` takes its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

import msgspec

from core.partitions import Partition
from core.trading_events import ORDER_EVENTS, OrderSubmitted, TradingEvent
from trading.domain.accounts import Account
from trading.domain.orders import Order
from trading.store.codec import StateCodec


class Book(msgspec.Struct, frozen=True, kw_only=True):
    """An account with its orders (every order it ever had, by order id) and the submission
    of each client order id (what a request sent again must equal)."""

    account: Account
    orders: Mapping[str, Order] = msgspec.field(default_factory=dict)
    submissions: Mapping[str, OrderSubmitted] = msgspec.field(default_factory=dict)


PREFIX: Final = "account:"


def aggregate_id(account: int) -> str:
    return f"{PREFIX}{account}"


def account_of(aggregate_id: str) -> int | None:
    """The account of an ``account:<id>`` stream (None for any other aggregate)."""
    number = aggregate_id.removeprefix(PREFIX)
    if number == aggregate_id or not (number.isascii() and number.isdigit()):
        return None
    return int(number)


def owns_stream(partition: Partition, aggregate_id: str) -> bool:
    """Whether ``partition`` owns the stream ``aggregate_id``: an account's stream belongs to
    the account's partition; a stream of no account (none today) to partition 0, so that it
    too has exactly one owner."""
    account = account_of(aggregate_id)
    return partition.index == 0 if account is None else partition.owns(account)


def apply(state: Book | None, event: TradingEvent) -> Book:
    """The pure fold step of the account aggregate: the account takes every event, the order
    its own (its ``order-submitted`` opens it)."""
    book = state or Book(account=Account(account=event.account))
    account = book.account.apply(event)
    if not isinstance(event, ORDER_EVENTS):
        return msgspec.structs.replace(book, account=account)
    if isinstance(event, OrderSubmitted):
        order = Order.submitted(event)
        submissions = {**book.submissions, event.client_order_id: event}
        orders = {**book.orders, event.order_id: order}
        return Book(account=account, orders=orders, submissions=submissions)
    order = book.orders[event.order_id].apply(event)
    return msgspec.structs.replace(
        book, account=account, orders={**book.orders, event.order_id: order}
    )


STATE_CODEC: Final[StateCodec[Book]] = StateCodec(Book, "trading-book")


def unpublished(
    partition: Partition, readers: Mapping[Partition, int]
) -> Callable[[str, int], bool]:
    """Whether ``partition``'s outbox publishes the notification ``(aggregate_id, id)``: one
    of its own streams, past the position of every outbox reader (``readers``: each reader's
    partition and position, of this partitioning or an earlier one) that owns the stream. So a
    new partitioning publishes what none of the stream's earlier owners had published, and no
    more."""

    def keep(aggregate_id: str, notification_id: int) -> bool:
        if not owns_stream(partition, aggregate_id):
            return False
        owners = (position for p, position in readers.items() if owns_stream(p, aggregate_id))
        return notification_id > max(owners, default=0)

    return keep
