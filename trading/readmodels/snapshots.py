"""One account's snapshot of the read models for the gateway's private channels: the
:class:`~core.trading_reads.TradingReads` the gateway is given (it never imports trading).

A snapshot is read in one ``REPEATABLE READ`` transaction: the projector's position (its
tracking row, committed with the rows it projected), the account's open and newest orders,
its newest fills and its positions, and, from the event store, the newest event of the
account at or below that position (its notification id and version in the account's
stream). So the rows are exactly the fold of the account's events up to that event, and the
gateway drops the live records at or below it and sends every one after it.

Orders are presented as the trading API presents one (``GET /trading/v1/orders/{id}``: the
msgspec JSON of the domain's :class:`~trading.domain.orders.Order`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Final

import msgspec
import psycopg
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.trading_reads import MAX_SNAPSHOT, AccountSnapshot
from telemetry.pools import pool_watched
from trading.readmodels.queries import read_pool
from trading.readmodels.tables import (
    DEFAULT_SCHEMA,
    OPEN_STATUSES,
    ORDER_SELECT,
    fill_of,
    order_of,
    position_of,
)
from trading.service.book import aggregate_id
from trading.store.database import StoreSettings
from trading.store.errors import StoreUnavailableError
from trading.store.projector import Projector

MAX_POSITIONS: Final = 1000
"""The most positions a snapshot holds (as the positions query)."""

Connection = psycopg.AsyncConnection[DictRow]
_encoder: Final = msgspec.json.Encoder()


class AccountSnapshots:
    """Snapshots of the read models in ``read_schema``; ``store`` names the event store's
    tables, in the schema the database URL's connections land in (learnt from the first
    connection). :meth:`open` makes one on a pool of its own."""

    def __init__(
        self,
        read_schema: str = DEFAULT_SCHEMA,
        store: StoreSettings | None = None,
        wait: float = 2.0,
    ) -> None:
        self._settings = store or StoreSettings("")
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._wait = wait
        self.read_schema = read_schema
        self._reader = Projector.reader(read_schema)
        self._tracking: Composed | None = None
        self._newest: Composed | None = None

    async def _configure(self, conn: Connection) -> None:
        """A new connection: learn the event store's schema (the URL's), then look in the
        read model's."""
        if self._tracking is None:
            row = await (await conn.execute("SELECT current_schema() AS schema")).fetchone()
            if row is None or row["schema"] is None:
                raise StoreUnavailableError("the URL's search_path names no existing schema")
            store = Identifier(row["schema"])
            self._tracking = SQL(
                "SELECT max(notification_id) AS position FROM {}.{} WHERE application_name = %s"
            ).format(store, Identifier(self._settings.tracking_table))
            self._newest = SQL(
                "SELECT notification_id, originator_version FROM {}.{} WHERE originator_id = %s"
                " AND notification_id <= %s ORDER BY originator_version DESC LIMIT 1"
            ).format(store, Identifier(self._settings.events_table))
        await conn.execute(SQL("SET search_path TO {}").format(Identifier(self.read_schema)))

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        url: str,
        schema: str = DEFAULT_SCHEMA,
        *,
        max_size: int = 2,
        timeout: float = 10.0,
    ) -> AsyncIterator[AccountSnapshots]:
        """Snapshots of the read models in ``schema`` of the trading database at ``url``.
        The database need not answer yet: reads fail until it does."""
        snapshots = cls(schema)
        pool = read_pool(
            url, snapshots._configure, max_size=max_size, timeout=timeout, name="trading-snapshots"
        )
        await pool.open(wait=False)
        snapshots._pool = pool
        try:
            with pool_watched(pool):
                yield snapshots
        finally:
            await pool.close()

    async def account_snapshot(self, account: int, limit: int) -> AccountSnapshot:
        """See :class:`~core.trading_reads.TradingReads`; ``ValueError`` for a ``limit``
        outside 0..:data:`~core.trading_reads.MAX_SNAPSHOT` or a negative account,
        :class:`~trading.store.errors.StoreUnavailableError` when the database does not
        answer."""
        if isinstance(limit, bool) or not 0 <= limit <= MAX_SNAPSHOT:
            raise ValueError(f"limit is 0 to {MAX_SNAPSHOT}, not {limit!r}")
        if isinstance(account, bool) or account < 0:
            raise ValueError(f"an account is an id from 0, not {account!r}")
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError("the snapshots are not open")
        try:
            async with (
                pool.connection(timeout=self._wait) as conn,
                conn.transaction(),
            ):
                return await self._read(conn, account, limit)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailableError(f"the read models' database: {exc}") from None

    async def _read(self, conn: Connection, account: int, limit: int) -> AccountSnapshot:
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        assert self._tracking is not None  # by _configure
        assert self._newest is not None
        row = await (await conn.execute(self._tracking, (self._reader,))).fetchone()
        position = 0 if row is None or row["position"] is None else int(row["position"])
        newest = await (
            await conn.execute(self._newest, (aggregate_id(account), position))
        ).fetchone()
        where = SQL(" WHERE o.account = %s AND ")
        open_rows = await (
            await conn.execute(
                ORDER_SELECT + where + SQL("o.status = ANY(%s) ORDER BY o.seq LIMIT %s"),
                (account, list(OPEN_STATUSES), MAX_SNAPSHOT),
            )
        ).fetchall()
        recent_rows = await (
            await conn.execute(
                ORDER_SELECT + where + SQL("true ORDER BY o.seq DESC LIMIT %s"), (account, limit)
            )
        ).fetchall()
        fill_rows = await (
            await conn.execute(
                "SELECT * FROM trading_fills WHERE account = %s ORDER BY seq DESC LIMIT %s",
                (account, limit),
            )
        ).fetchall()
        position_rows = await (
            await conn.execute(
                "SELECT * FROM trading_positions WHERE account = %s ORDER BY instrument LIMIT %s",
                (account, MAX_POSITIONS),
            )
        ).fetchall()
        orders = {row["seq"]: row for row in [*open_rows, *recent_rows]}
        return AccountSnapshot(
            account=account,
            notification_id=0 if newest is None else int(newest["notification_id"]),
            version=0 if newest is None else int(newest["originator_version"]),
            orders=[_encoder.encode(order_of(orders[seq])) for seq in sorted(orders)],
            fills=[fill_of(row) for row in reversed(fill_rows)],
            positions=[position_of(row) for row in position_rows],
        )
