"""One account's firings for the gateway's ``alerts`` channel: the
:class:`~core.alert_reads.AlertReads` the gateway is given (it never imports the main API).
Read only: it makes no table and writes nothing.

A snapshot is read in one ``REPEATABLE READ, READ ONLY`` transaction: the account's newest
:data:`~core.alert_reads.MAX_SNAPSHOT` notifications (one per firing recorded, in the order
:meth:`~main_api.store.MainStore.record_firing` recorded them, on the index by account), each
with its fired row, and the count of its unread ones. So the ``fire_id`` it is current to, the
firings it shows and the unread count are of one moment.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.alert_reads import MAX_SNAPSHOT, AlertsSnapshot
from main_api.errors import StoreUnavailableError
from main_api.settings import DEFAULT_SCHEMA
from main_api.store import Connection, schema_pool
from main_api.tables import fired_of

_NEWEST: Final = (
    "SELECT f.* FROM main_api_notifications n JOIN main_api_fired f USING (fire_id)"
    " WHERE n.account = %s ORDER BY n.seq DESC LIMIT %s"
)
_UNREAD: Final = (
    "SELECT count(*) AS n FROM main_api_notifications WHERE account = %s AND read_at IS NULL"
)


@dataclass(frozen=True, slots=True)
class AlertSnapshots:
    """Snapshots of the firings in the main API's tables, on ``pool`` (its connections'
    ``search_path`` the main API's schema: :meth:`open` makes such a pool); a connection not
    had within ``wait`` seconds is a failed read."""

    pool: AsyncConnectionPool[Connection]
    wait: float = 2.0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, url: str, schema: str = DEFAULT_SCHEMA, *, max_size: int = 2, timeout: float = 10.0
    ) -> AsyncIterator[AlertSnapshots]:
        """Snapshots of the tables in ``schema`` of the main API's database at ``url``. The
        database (and the tables, made by the main API) need not be there yet: reads fail
        until they are."""
        pool = schema_pool(url, schema, max_size=max_size, timeout=timeout, name="alert-reads")
        await pool.open(wait=False)
        try:
            yield cls(pool)
        finally:
            await pool.close()

    async def alerts_snapshot(self, account: int, limit: int) -> AlertsSnapshot:
        """See :class:`~core.alert_reads.AlertReads`; ``ValueError`` for a ``limit`` outside
        0..:data:`~core.alert_reads.MAX_SNAPSHOT` or a negative account,
        :class:`~main_api.errors.StoreUnavailableError` when the database does not answer."""
        if isinstance(limit, bool) or not 0 <= limit <= MAX_SNAPSHOT:
            raise ValueError(f"limit is 0 to {MAX_SNAPSHOT}, not {limit!r}")
        if isinstance(account, bool) or account < 0:
            raise ValueError(f"an account is an id from 0, not {account!r}")
        try:
            async with self.pool.connection(timeout=self.wait) as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                rows = await (await conn.execute(_NEWEST, (account, MAX_SNAPSHOT))).fetchall()
                counted = await (await conn.execute(_UNREAD, (account,))).fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            raise StoreUnavailableError(f"the main API's database: {exc}") from None
        rows.reverse()  # oldest first
        named = tuple(fired_of(row) for row in rows)
        return AlertsSnapshot(
            account=account,
            fire_ids=tuple(event.fire_id for event in named),
            firings=list(named[len(named) - limit :]) if limit else [],
            unread=0 if counted is None else int(counted["n"]),
            named=named,
        )
