"""PostgreSQL's :class:`~storage.reads.HistoryReads`: psycopg against the storage schema,
streamed in chunks.

Besides whole lists, the history API needs a page summary before the first byte goes out
(how many rows, where the next page starts, whether any candle is still open, the decimal
scales), and the page itself in bounded chunks. Stored candles in a ready form are read with
their summary in one statement (:mod:`storage.pg_pages`); candles and ticks stream through a
server-side cursor, a chunk of rows at a time; the feed gaps of a range (at most the row
limit) come in one query. Every query is a range scan of a primary key (``candles``:
instrument, interval, open time; ``ticks``: event time first; ``feed_gaps``: instrument,
start), which ``tests/charting/test_query_plans.py`` checks with EXPLAIN.

The pools' connections are read-only and have a statement timeout. They also have sorting
priced out (``enable_sort=off``): every query here reads a key range in key order, which
needs no sort, and a planner that sees one instrument's whole table in a range (a small
database) would otherwise sort all its rows instead of walking the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta
from typing import Any, Final, LiteralString

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from core.candles import Candle
from core.intervals import Interval
from core.present import ReadForm
from storage.candle_rows import READ_COLUMNS, candle_from_row
from storage.pg_pages import (
    CANDLE_RANGE,
    CandleRead,
    SyncPool,
    candle_params,
    page_statement,
    read_summary,
)
from storage.postgres_store import DEFAULT_WAIT, INSTRUMENTS, RECONNECT_TIMEOUT
from storage.reads import (
    CandleBar,
    CandlePage,
    GapRow,
    TickKey,
    TickPage,
    TickRow,
)
from storage.times import at_or_after, at_or_before
from storage.unavailable import describe
from telemetry.pools import pool_watched

Connection = psycopg.AsyncConnection[Any]
Rows = list[Any]
"""A chunk of rows as psycopg gives them (each caller states its row type)."""

_NS: Final = 1_000_000_000
_EPOCH_S: Final = "extract(epoch FROM open_time)::bigint"
_EPOCH_NS: Final = "(extract(epoch FROM open_time) * 1000000000)::bigint"

BAR_COLUMNS: Final = f"""{_EPOCH_NS}, open::text, high::text, low::text, close::text,
    volume::text, gap::text"""
"""A candle as a :data:`~storage.reads.CandleBar` row: NUMERIC as text keeps its places, a
boolean as text is ``true`` or ``false`` (its output form would be ``t`` or ``f``)."""

_SOURCE_CANDLES: Final = f"""
SELECT {READ_COLUMNS} FROM (
    SELECT *, {_EPOCH_NS} AS open_time_ns
    {CANDLE_RANGE}
) AS found
"""
_TICK_RANGE: Final = """
FROM ticks
WHERE ts_event >= %(lo)s AND ts_event < %(hi)s
  AND instrument = %(instrument)s
  AND (ts_event_ns, trade_id) >= (%(start_ns)s, %(start_id)s)
  AND (ts_event_ns, trade_id) < (%(end_ns)s, %(end_id)s)
"""
_TICK_ORDER: Final = "ORDER BY ts_event, ts_event_ns, trade_id"
TICK_COLUMNS: Final = "ts_event_ns, trade_id, price::text, size::text, side, ts_recv_ns, trades"
_TICK_SUMMARY: Final = f"""
WITH bound AS (
    SELECT ts_event_ns, trade_id {_TICK_RANGE}
    {_TICK_ORDER} OFFSET %(limit)s LIMIT 1
)
SELECT count(*), max(scale(price)), max(scale(size)),
       (SELECT ts_event_ns FROM bound), (SELECT trade_id FROM bound)
{_TICK_RANGE}
  AND (ts_event_ns, trade_id) < coalesce(
      (SELECT (ts_event_ns, trade_id) FROM bound), (%(end_ns)s::bigint, %(end_id)s::bigint))
"""
_GAPS: Final = """
SELECT start_ns, end_ns, reason, detail, noticed_ns FROM feed_gaps
WHERE instrument = %(instrument)s AND start_ns < %(end)s AND end_ns > %(start)s
ORDER BY start_ns, end_ns, reason
LIMIT %(limit)s
"""
"""The gaps of one instrument overlapping ``[start, end)``: a walk of ``feed_gaps``' key."""
_INT64_MAX: Final = 2**63 - 1
_PING_WAIT: Final = 2
_cursor_names = itertools.count()


class PostgresReads:
    """:class:`~storage.reads.HistoryReads` of a PostgreSQL database.

    Open it with :meth:`open`; it owns its connection pools for the ``async with`` block.
    """

    def __init__(self, pool: AsyncConnectionPool[Connection], pages: SyncPool, url: str) -> None:
        self._pool = pool
        self._pages = pages
        self._url = url
        self._known: set[str] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 30.0,
        wait: float = DEFAULT_WAIT,
    ) -> AsyncIterator[PostgresReads]:
        """Two pools of ``max_size`` each: asyncio connections for most reads, blocking ones
        for candle pages, which are read in worker threads (:class:`CandleRead` says why).
        Those are autocommit: a page is one statement, one round trip, no BEGIN or COMMIT.

        ``timeout`` bounds the opening. Afterwards the pools check each connection before
        lending it and replace dead ones; a read that gets no live connection within
        ``wait`` seconds raises :class:`psycopg.OperationalError` (the app answers 503)."""
        given = conninfo_to_dict(url).get("options") or ""
        options = (
            f"{given} -c default_transaction_read_only=on -c statement_timeout=30000"
            " -c enable_sort=off"
        )
        kwargs = {"options": options.strip(), "application_name": "mdp-history-api"}
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            url, min_size=min_size, max_size=max_size, open=False, timeout=wait,
            name="history", kwargs=kwargs, check=AsyncConnectionPool.check_connection,
            reconnect_timeout=RECONNECT_TIMEOUT,
        )  # fmt: skip
        pages: SyncPool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, open=False, timeout=wait,
            name="history-pages", kwargs=kwargs | {"autocommit": True},
            check=ConnectionPool.check_connection, reconnect_timeout=RECONNECT_TIMEOUT,
        )  # fmt: skip
        async with contextlib.AsyncExitStack() as stack:
            await pool.open(wait=True, timeout=timeout)
            stack.push_async_callback(pool.close)
            await asyncio.to_thread(pages.open, True, timeout)
            stack.push_async_callback(asyncio.to_thread, pages.close)
            stack.enter_context(pool_watched(pool))
            stack.enter_context(pool_watched(pages))
            yield cls(pool, pages, url)

    async def unreachable(self) -> str | None:
        """``None`` when the database answers a trivial query; else why it does not.

        Asked over a connection of its own, not the pool's: a pool busy with long exports is
        no reason to take the API out of a load balancer."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._url, connect_timeout=_PING_WAIT, autocommit=True
            )
            async with conn:
                await asyncio.wait_for(conn.execute("SELECT 1"), _PING_WAIT)
        except (psycopg.OperationalError, TimeoutError) as exc:
            return describe(exc)
        return None

    # -- instruments ----------------------------------------------------------------------

    async def instruments(self) -> list[str]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(INSTRUMENTS)
            found = [str(row[0]) for row in await cursor.fetchall()]
        self._known.update(found)
        return found

    async def has_instrument(self, instrument: str) -> bool:
        """Whether ``instrument`` has ever been written (instruments are never removed)."""
        if instrument in self._known:
            return True
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT 1 FROM instruments WHERE instrument = %s", (instrument,)
            )
            found = await cursor.fetchone() is not None
        if found:
            self._known.add(instrument)
        return found

    async def scales(self, instrument: str, interval: Interval) -> tuple[int, int] | None:
        """Price and size decimal places of the newest ``interval`` candle, if there is one."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT scale(close), scale(volume) FROM candles"
                " WHERE instrument = %s AND interval = %s ORDER BY open_time DESC LIMIT 1",
                (instrument, interval.label),
            )
            row = await cursor.fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    # -- candles --------------------------------------------------------------------------

    async def candle_page(
        self, instrument: str, interval: Interval, start: int, end: int, limit: int
    ) -> CandlePage:
        """Summary of the first ``limit`` stored candles opening in ``[start, end)``."""
        return await asyncio.to_thread(
            read_summary, self._pages, instrument, interval, start, end, limit
        )

    def read_ready(
        self,
        form: ReadForm,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
        limit: int,
        chunk: int,
    ) -> CandleRead:
        """The first ``limit`` stored candles opening in ``[start, end)`` in ``form``
        (:meth:`CandleRead.open`, then :meth:`CandleRead.chunks` or :meth:`CandleRead.aclose`)."""
        return CandleRead(self._pages, form, instrument, interval, start, end, limit, chunk)

    async def candle_bars(
        self,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
        chunk: int,
        *,
        descending: bool = False,
        limit: int | None = None,
    ) -> AsyncGenerator[list[CandleBar], None]:
        """Stored candles opening in ``[start, end)``, as rows of :data:`BAR_COLUMNS`."""
        order: LiteralString = "ORDER BY open_time DESC" if descending else "ORDER BY open_time"
        query: LiteralString = f"SELECT {BAR_COLUMNS} {CANDLE_RANGE} {order}"
        if limit is not None:
            query += " LIMIT %(limit)s"
        params = candle_params(instrument, interval, start, end) | {"limit": limit}
        async with contextlib.aclosing(self._stream(query, params, chunk)) as chunks:
            async for rows in chunks:
                yield rows

    async def candle_chunks(
        self,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
        chunk: int,
        *,
        descending: bool = False,
    ) -> AsyncGenerator[list[Candle], None]:
        """Stored candles opening in ``[start, end)`` as :class:`Candle` s."""
        order: LiteralString = "ORDER BY open_time DESC" if descending else "ORDER BY open_time"
        params = candle_params(instrument, interval, start, end)
        query: LiteralString = f"{_SOURCE_CANDLES} {order}"
        async with contextlib.aclosing(self._stream(query, params, chunk)) as chunks:
            async for rows in chunks:
                yield [candle_from_row(row, interval) for row in rows]

    async def last_open_time(self, instrument: str, interval: Interval, before: int) -> int | None:
        """Open time of the newest stored candle opening before ``before``."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_EPOCH_S} FROM candles WHERE instrument = %s AND interval = %s"
                " AND open_time < %s ORDER BY open_time DESC LIMIT 1",
                (instrument, interval.label, at_or_after(before)),
            )
            row = await cursor.fetchone()
        return None if row is None else int(row[0]) * _NS

    # -- ticks ----------------------------------------------------------------------------

    async def tick_page(
        self, instrument: str, start: TickKey, end: TickKey, limit: int
    ) -> TickPage:
        """Summary of the first ``limit`` ticks from ``start`` (inclusive) to ``end``."""
        params = tick_params(instrument, start, end) | {"limit": limit}
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_TICK_SUMMARY, params)
            row = await cursor.fetchone()
        assert row is not None
        rows, ps, ss, next_ns, next_id = row
        next_start = None if next_ns is None else TickKey(int(next_ns), int(next_id))
        return TickPage(
            start=start,
            end=end if next_start is None else next_start,
            rows=int(rows),
            price_scale=int(ps or 0),
            size_scale=int(ss or 0),
            next_start=next_start,
        )

    async def tick_rows(
        self, instrument: str, start: TickKey, end: TickKey, chunk: int
    ) -> AsyncGenerator[list[TickRow], None]:
        """Ticks from ``start`` (inclusive) to ``end`` (exclusive), rows of TICK_COLUMNS."""
        query: LiteralString = f"SELECT {TICK_COLUMNS} {_TICK_RANGE} {_TICK_ORDER}"
        params = tick_params(instrument, start, end)
        async with contextlib.aclosing(self._stream(query, params, chunk)) as chunks:
            async for rows in chunks:
                yield rows

    # -- feed gaps ------------------------------------------------------------------------

    async def gaps(self, instrument: str, start: int, end: int, limit: int) -> list[GapRow]:
        """The first ``limit`` stored feed gaps of ``instrument`` overlapping ``[start, end)``,
        by start (then end, reason)."""
        async with self._pool.connection() as conn:
            query = gap_params(instrument, start, end) | {"limit": limit}
            cursor = await conn.execute(_GAPS, query)
            return [
                (int(a), int(b), str(reason), str(detail), None if n is None else int(n))
                for a, b, reason, detail, n in await cursor.fetchall()
            ]

    # -- plumbing -------------------------------------------------------------------------

    async def explain(self, query: LiteralString, params: dict[str, Any]) -> str:
        """The plan PostgreSQL picks for ``query`` (tests check that the indexes are used)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(f"EXPLAIN {query}", params)
            return "\n".join(str(row[0]) for row in await cursor.fetchall())

    async def _stream(
        self, query: LiteralString, params: dict[str, Any], chunk: int
    ) -> AsyncGenerator[Rows, None]:
        """Rows of ``query`` through a server-side cursor, ``chunk`` at a time."""
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name=f"history_{next(_cursor_names)}") as cursor,
        ):
            await cursor.execute(query, params)
            while rows := await cursor.fetchmany(chunk):
                yield rows


def tick_params(instrument: str, start: TickKey, end: TickKey) -> dict[str, Any]:
    return {
        "instrument": instrument,
        "lo": at_or_before(start.ns),
        "hi": at_or_before(end.ns) + timedelta(microseconds=1),
        "start_ns": min(start.ns, _INT64_MAX),
        "start_id": start.trade_id,
        "end_ns": min(end.ns, _INT64_MAX),
        "end_id": end.trade_id,
    }


def gap_params(instrument: str, start: int, end: int) -> dict[str, Any]:
    return {"instrument": instrument, "start": min(start, _INT64_MAX), "end": min(end, _INT64_MAX)}


def gap_queries() -> dict[str, LiteralString]:
    """The feed-gap query by name (parameters: :func:`gap_params` and ``limit``)."""
    return {"gaps": _GAPS}


def candle_queries() -> dict[str, LiteralString]:
    """The candle queries by name, for the EXPLAIN tests (parameters: :func:`candle_params`,
    ``limit`` and ``rows``)."""
    return {
        "summary": page_statement(ReadForm.JSON, body=False),
        "page_json": page_statement(ReadForm.JSON),
        "page_packed": page_statement(ReadForm.PACKED),
        "latest": f"SELECT {BAR_COLUMNS} {CANDLE_RANGE} ORDER BY open_time DESC LIMIT %(limit)s",
        "source": f"{_SOURCE_CANDLES} ORDER BY open_time",
    }


def tick_queries() -> dict[str, LiteralString]:
    """The tick queries by name (parameters: :func:`tick_params` and ``limit``)."""
    return {
        "summary": _TICK_SUMMARY,
        "page": f"SELECT {TICK_COLUMNS} {_TICK_RANGE} {_TICK_ORDER}",
    }
