"""The queries the read models answer: an account's orders, fills, positions and balances.

Every query names its account and returns only that account's rows; every one is bounded (a
page of at most :data:`MAX_LIMIT` rows). Orders and fills page by their per-account number
``seq``: ``after`` is the last ``seq`` of the previous page (0: from the first). The queries
are async, on a psycopg connection pool whose connections look in the read model's schema;
a database that cannot be reached is :class:`~trading.store.errors.StoreUnavailableError`
(``store-unavailable``), and the next query after it is back succeeds.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final, LiteralString

import msgspec
import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.positions import PRICE_DIGITS, Position, unrealised
from core.trading_events import OrderFilled
from telemetry.pools import pool_watched
from trading.domain.orders import Order
from trading.readmodels.projection import Balance
from trading.readmodels.tables import (
    DEFAULT_SCHEMA,
    OPEN_STATUSES,
    ORDER_SELECT,
    balance_of,
    fill_of,
    order_of,
    position_of,
)
from trading.store.errors import StoreUnavailableError

MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100
MAX_ID: Final = 2**63 - 1
_AVERAGES: Final = Context(prec=PRICE_DIGITS, rounding=ROUND_HALF_EVEN)

Connection = psycopg.AsyncConnection[DictRow]
Query = SQL | Composed


class QueryError(ValueError):
    """A query refused before it ran: ``code`` is ``bad-account``, ``bad-limit``,
    ``bad-cursor`` or ``bad-order-id``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class OrderView(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    """The order's number in its account (what ``after`` pages by)."""
    order: Order
    average_fill_price: Decimal | None
    """The fills' notional over their quantity, rounded as the domain rounds an average
    (``None`` before the first fill)."""


class FillView(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    fill: OrderFilled


class PositionView(msgspec.Struct, frozen=True, kw_only=True):
    position: Position
    last_price: Decimal | None
    unrealised: Decimal | None
    """Marked to ``last_price`` (``None`` without one)."""


class BalanceView(msgspec.Struct, frozen=True, kw_only=True):
    balance: Balance
    available: Decimal
    """Cash less what is reserved."""


def read_pool(
    url: str,
    configure: Callable[[Connection], Awaitable[None]],
    *,
    max_size: int,
    timeout: float,
    name: str,
) -> AsyncConnectionPool[Connection]:
    """A pool for reading the read models, not yet open: autocommit connections with dict
    rows, each ``configure``d when made and checked before it is lent (a connection the
    database dropped is replaced, not handed out)."""
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row},
        configure=configure,
        check=AsyncConnectionPool.check_connection,
        timeout=timeout,
        name=name,
    )


class TradingQueries:
    """The queries, on ``pool`` (its connections' ``search_path`` the read model's schema:
    :meth:`open` makes such a pool)."""

    def __init__(self, pool: AsyncConnectionPool[Connection], wait: float = 2.0) -> None:
        self._pool = pool
        self._wait = wait

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, url: str, schema: str = DEFAULT_SCHEMA, *, max_size: int = 4, timeout: float = 10.0
    ) -> AsyncIterator[TradingQueries]:
        """The queries on a pool of their own, open for the ``async with`` block."""

        async def configure(conn: Connection) -> None:
            await conn.execute(SQL("SET search_path TO {}").format(Identifier(schema)))

        pool = read_pool(url, configure, max_size=max_size, timeout=timeout, name="trading-queries")
        await pool.open(wait=True, timeout=timeout)
        try:
            with pool_watched(pool):
                yield cls(pool)
        finally:
            await pool.close()

    async def ping(self) -> None:
        """Return when the read models' database answers; :class:`StoreUnavailableError`
        when it does not."""
        await self._rows(SQL("SELECT 1"), ())

    async def orders(
        self,
        account: int,
        *,
        open_only: bool = False,
        limit: int = DEFAULT_LIMIT,
        after: int = 0,
    ) -> list[OrderView]:
        """The account's orders numbered after ``after``, oldest first (only the open ones
        with ``open_only``)."""
        where = " AND o.status = ANY(%(open)s)" if open_only else ""
        rows = await self._page(
            ORDER_SELECT + SQL(" WHERE o.account = %(account)s AND o.seq > %(after)s" + where),
            SQL("o.seq"),
            {"account": account, "after": after, "limit": limit, "open": list(OPEN_STATUSES)},
        )
        return [_order_view(row) for row in rows]

    async def order(self, account: int, order_id: str) -> OrderView | None:
        """One of the account's orders (``None``: the account has no such order)."""
        _check_account(account)
        if not 1 <= len(order_id) <= 64:
            raise QueryError("bad-order-id", "an order id has 1 to 64 characters")
        rows = await self._rows(
            ORDER_SELECT + SQL(" WHERE o.account = %s AND o.order_id = %s"), (account, order_id)
        )
        return _order_view(rows[0]) if rows else None

    async def fills(
        self, account: int, *, limit: int = DEFAULT_LIMIT, after: int = 0
    ) -> list[FillView]:
        """The account's fills numbered after ``after``, oldest first."""
        rows = await self._page(
            SQL("SELECT * FROM trading_fills WHERE account = %(account)s AND seq > %(after)s"),
            SQL("seq"),
            {"account": account, "after": after, "limit": limit},
        )
        return [FillView(seq=row["seq"], fill=fill_of(row)) for row in rows]

    async def positions(
        self, account: int, last_prices: Mapping[str, Decimal] | None = None
    ) -> list[PositionView]:
        """The account's positions by instrument, each marked to its price in
        ``last_prices`` where it has one."""
        prices = last_prices or {}
        rows = await self._all(account, "trading_positions", "instrument")
        views = []
        for row in rows:
            position = position_of(row)
            last = prices.get(position.instrument)
            mark = None if last is None else unrealised(position, last)
            views.append(PositionView(position=position, last_price=last, unrealised=mark))
        return views

    async def balances(self, account: int) -> list[BalanceView]:
        """The account's balances by currency."""
        rows = await self._all(account, "trading_balances", "currency")
        return [BalanceView(balance=balance_of(row), available=row["available"]) for row in rows]

    # -- the shell ------------------------------------------------------------------------------

    async def _page(self, query: Query, order_by: SQL, params: dict[str, Any]) -> list[DictRow]:
        _check_account(params["account"])
        limit, after = params["limit"], params["after"]
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise QueryError("bad-limit", f"limit is 1 to {MAX_LIMIT}, not {limit!r}")
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_ID:
            raise QueryError("bad-cursor", f"after is a row number from 0, not {after!r}")
        return await self._rows(
            SQL("{} ORDER BY {} LIMIT %(limit)s").format(query, order_by), params
        )

    async def _all(self, account: int, table: LiteralString, order: LiteralString) -> list[DictRow]:
        _check_account(account)
        return await self._rows(
            SQL("SELECT * FROM {} WHERE account = %s ORDER BY {} LIMIT %s").format(
                Identifier(table), Identifier(order)
            ),
            (account, MAX_LIMIT),
        )

    async def _rows(self, query: Query, params: Any) -> list[DictRow]:
        try:
            async with self._pool.connection(timeout=self._wait) as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchall()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailableError(f"the read models' database: {exc}") from None


def _check_account(account: int) -> None:
    if isinstance(account, bool) or not isinstance(account, int) or not 0 <= account <= MAX_ID:
        raise QueryError("bad-account", f"an account is an id from 0 to {MAX_ID}")


def _order_view(row: DictRow) -> OrderView:
    order = order_of(row)
    average = (
        _AVERAGES.divide(order.filled_notional, order.filled_quantity)
        if order.filled_quantity
        else None
    )
    return OrderView(seq=row["seq"], order=order, average_fill_price=average)
