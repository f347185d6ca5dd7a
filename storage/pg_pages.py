"""PostgreSQL: a page of stored candles in one statement, ready rows joined by the database.

Every candle row keeps two read forms written at upsert time (:mod:`storage.candle_rows`,
with :mod:`core.present`'s encoders): its JSON object and its integers packed as big-endian
words. A page is then one statement
that joins the forms of its rows into one value (``string_agg`` over the rows in key order)
and, in the same pass, sums the page up: how many rows, whether one is open, its last
change, its decimal places, and where the next page starts. One round trip, one scan of a
key range (packed pages: of the covering index ``candles_packed`` alone, where the pages are
all-visible), no number formatted, no row handled by Python one at a time.

Order: the rows come from a subquery ordered by the key with a LIMIT; such a subquery is
never flattened, and a plain aggregate takes its input in the order given, so the joined
value is in open-time order (:func:`core.present.packed.packed_rows` checks it for packed rows).

A long page (:data:`HALVES_FROM` rows or more) is two such statements sent at once in
pipeline mode, for the first half of its time span and the rest (:func:`read_page`), in one
REPEATABLE READ transaction: PostgreSQL builds the second half while the first is on its way
here (on this two-core machine, 10,000 packed rows: p50 8.2-8.9 ms instead of 9.3-9.9, p99
10 ms instead of 13-14; ``docs/history-api.md``).

Large pages stay bounded in memory: a page over ``chunk`` rows is read ``chunk`` rows per
statement, with a summary statement after the first chunk (its headers need the whole page's
summary before the first byte), all in one REPEATABLE READ transaction, so that chunks and
summary agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Final, LiteralString

import psycopg
from psycopg import pq
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool

from core.candles import VWAP_EXTRA_PLACES
from core.intervals import Interval
from core.present import ReadForm
from core.present.packed import STATUSES, packed_rows, status_codes
from storage.reads import CandlePage, check_page_bounds
from storage.times import at_or_after

SyncConnection = psycopg.Connection[Any]
SyncPool = ConnectionPool[SyncConnection]

_NS: Final = 1_000_000_000
_OPEN: Final = STATUSES.index("open")
HALVES_FROM: Final = 2_000
"""Pages of at least this many rows are read in two halves at once (:func:`read_page`)."""

CANDLE_RANGE: Final = """
FROM candles
WHERE instrument = %(instrument)s AND interval = %(interval)s
  AND open_time >= %(start)s AND open_time < %(end)s
"""
"""The rows of one instrument and interval opening in ``[start, end)`` (see
:func:`candle_params`): a range of the primary key."""


def _joined_form(form: ReadForm) -> LiteralString:
    """The aggregate joining a page's ``form`` column (its :attr:`~ReadForm.separator`)."""
    if form is ReadForm.JSON:
        return "string_agg(json, ',')"
    return "string_agg(packed, ''::bytea)"


def _column(form: ReadForm) -> LiteralString:
    return "json" if form is ReadForm.JSON else "packed"


def page_statement(form: ReadForm, *, body: bool = True) -> LiteralString:
    """The first ``rows`` candles of the range as one row: the joined ``form`` (NULL when
    ``body`` is false: a summary only), the row count, how many have ``form`` (fewer: the
    page must be read from the numerics), whether one is open, the last change (epoch
    microseconds), the finest price and size scales, and the open time (epoch seconds) of
    the next candle in the range, if any.

    Each column costs the database a step per row, so a page read with its body leaves out
    what its reader finds in the body itself: packed rows hold their status and scales
    (:func:`read_part` takes them from there), and a JSON page needs no scales. The scales
    of a summary count rows without a read form too, from their numerics.
    """
    column = _column(form)
    ready: LiteralString = f"count({column})"
    has_open: LiteralString = "coalesce(bool_or(status = 'open'), false)"
    scales: LiteralString = "NULL::int, NULL::int"
    kept: LiteralString = f"{column}, open_time, updated_at, status"
    if not body:
        joined: LiteralString = "NULL::bytea"
        scales = (
            "max(coalesce(price_scale, scale(close))), max(coalesce(size_scale, scale(volume)))"
        )
        kept += ", price_scale, size_scale, close, volume"
    elif form is ReadForm.JSON:
        joined = _joined_form(form)
    else:
        joined, ready, has_open = _joined_form(form), "NULL::bigint", "NULL::bool"
        kept = f"{column}, open_time, updated_at"
    return f"""
SELECT {joined},
       count(*),
       {ready},
       {has_open},
       (extract(epoch FROM max(updated_at)) * 1000000)::bigint,
       {scales},
       (SELECT extract(epoch FROM later.open_time)::bigint FROM candles AS later
        WHERE later.instrument = %(instrument)s AND later.interval = %(interval)s
          AND later.open_time > max(page.open_time) AND later.open_time < %(end)s
        ORDER BY later.open_time LIMIT 1)
FROM (
    SELECT {kept}
    {CANDLE_RANGE}
    ORDER BY open_time LIMIT %(rows)s
) AS page
"""


def candle_params(instrument: str, interval: Interval, start: int, end: int) -> dict[str, Any]:
    return {
        "instrument": instrument,
        "interval": interval.label,
        "start": at_or_after(start),
        "end": at_or_after(end),
    }


@dataclass(frozen=True, slots=True)
class _Part:
    """One statement's answer: see :func:`page_statement`."""

    body: bytes
    rows: int
    ready: int
    has_open: bool
    updated_us: int | None
    price_scale: int
    size_scale: int
    after: int | None
    """Open time (ns) of the first candle of the range after these rows."""

    def page(self, start: int, end: int, limit: int) -> CandlePage:
        next_start = self.after if self.rows == limit else None
        ps, ss = self.price_scale, self.size_scale
        return CandlePage(
            start=start,
            end=end if next_start is None else next_start,
            rows=self.rows,
            has_open=self.has_open,
            updated_us=self.updated_us,
            next_start=next_start,
            price_scale=ps,
            size_scale=ss,
            quote_scale=ps + ss,
            vwap_scale=ps + VWAP_EXTRA_PLACES,
        )


class _TextAsBytes(Loader):
    """Text columns as the bytes sent (UTF-8): a joined JSON page goes out as it came."""

    format = pq.Format.BINARY

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def _cursor(conn: SyncConnection) -> psycopg.Cursor[Any]:
    cursor = conn.cursor(binary=True)
    cursor.adapters.register_loader("text", _TextAsBytes)
    return cursor


def _execute(
    cursor: psycopg.Cursor[Any], form: ReadForm, params: dict[str, Any], rows: int, body: bool
) -> None:
    # Never prepared: a prepared statement soon gets PostgreSQL's generic plan, which
    # guesses a handful of rows for any range and so walks the table instead of reading
    # the covering index; a plan made for the actual range costs a fraction of a millisecond.
    statement = page_statement(form, body=body)
    cursor.execute(statement, params | {"rows": rows}, prepare=False)


def _result(cursor: psycopg.Cursor[Any], form: ReadForm, body: bool) -> _Part:
    found = cursor.fetchone()
    assert found is not None  # an aggregate always gives one row
    joined, count, ready, has_open, updated_us, ps, ss, after = found
    data = b"" if joined is None else bytes(joined)
    if body and form is ReadForm.PACKED:  # the rest is in the rows themselves
        packed = packed_rows(data)
        ready = len(packed)
        has_open = bool((status_codes(packed["status"]) == _OPEN).any())
        ps = int(packed["price_scale"].max()) if len(packed) else 0
        ss = int(packed["size_scale"].max()) if len(packed) else 0
    return _Part(
        body=data,
        rows=int(count),
        ready=int(ready),
        has_open=bool(has_open),
        updated_us=None if updated_us is None else int(updated_us),
        price_scale=int(ps or 0),
        size_scale=int(ss or 0),
        after=None if after is None else int(after) * _NS,
    )


def read_part(
    conn: SyncConnection, form: ReadForm, params: dict[str, Any], rows: int, *, body: bool = True
) -> _Part:
    """Run :func:`page_statement` (blocking: see :class:`CandleRead` for why)."""
    cursor = _cursor(conn)
    _execute(cursor, form, params, rows, body)
    return _result(cursor, form, body)


def read_page(
    conn: SyncConnection,
    form: ReadForm,
    instrument: str,
    interval: Interval,
    start: int,
    end: int,
    rows: int,
) -> _Part:
    """The first ``rows`` candles of ``[start, end)``, summary and body (blocking).

    From :data:`HALVES_FROM` rows on, in halves: ``[start, middle)``, where ``middle`` is
    ``rows // 2`` intervals on (candles of one interval open at least an interval apart, so
    at most ``rows // 2`` of them are there), and the rest of the rows from ``middle``, both
    sent in one pipeline within a REPEATABLE READ transaction. Where the first half holds
    fewer (missing candles), the rows still wanting are read after the second, in the same
    transaction.
    """
    middle = start + rows // 2 * interval.ns
    if rows < HALVES_FROM or middle >= end:
        return read_part(conn, form, candle_params(instrument, interval, start, end), rows)
    first, second = _cursor(conn), _cursor(conn)
    try:
        with conn.pipeline():
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            half = candle_params(instrument, interval, start, middle)
            _execute(first, form, half, rows, True)
            rest = candle_params(instrument, interval, middle, end)
            _execute(second, form, rest, rows - rows // 2, True)
        parts = [_result(first, form, True), _result(second, form, True)]
        first_rows, second_rows, after = parts[0].rows, parts[1].rows, parts[1].after
        if first_rows > rows // 2:  # candles closer than an interval: read it whole
            whole = candle_params(instrument, interval, start, end)
            parts = [read_part(conn, form, whole, rows)]
        elif first_rows + second_rows < rows and second_rows == rows - rows // 2 and after:
            later = candle_params(instrument, interval, after, end)
            parts.append(read_part(conn, form, later, rows - first_rows - second_rows))
    finally:
        conn.rollback()  # read only: nothing to keep
    return _joined(form, parts)


def _joined(form: ReadForm, parts: list[_Part]) -> _Part:
    """Parts read one after another as one: their bodies joined, their summaries summed."""
    bodies = [part.body for part in parts if part.body]
    changes = [part.updated_us for part in parts if part.updated_us is not None]
    return _Part(
        body=form.separator.join(bodies),
        rows=sum(part.rows for part in parts),
        ready=sum(part.ready for part in parts),
        has_open=any(part.has_open for part in parts),
        updated_us=max(changes, default=None),
        price_scale=max(part.price_scale for part in parts),
        size_scale=max(part.size_scale for part in parts),
        after=parts[-1].after,
    )


def read_summary(
    pool: SyncPool, instrument: str, interval: Interval, start: int, end: int, limit: int
) -> CandlePage:
    """The summary of a page alone (blocking)."""
    params = candle_params(instrument, interval, start, end)
    with pool.connection() as conn:
        part = read_part(conn, ReadForm.JSON, params, limit, body=False)
    return part.page(start, end, limit)


class CandleRead:
    """One page of stored candles in one read form: :meth:`open` gives its summary,
    :meth:`chunks` its joined rows.

    A page of at most ``chunk`` rows is one statement and holds no connection after
    :meth:`open`; a larger one holds a connection (and its transaction) until
    :meth:`chunks` ends or :meth:`aclose` is called.

    The statements run on a connection of a blocking pool, in a worker thread: a page
    arrives from PostgreSQL in 8 KiB pieces, and psycopg's C wait loop takes them at half
    the CPU of an event loop woken for each (for a 3.5 MB JSON page, 4 ms instead of 10),
    while the event loop, the platform's when embedded, serves others meanwhile.
    """

    def __init__(
        self,
        pool: SyncPool,
        form: ReadForm,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
        limit: int,
        chunk: int,
    ) -> None:
        check_page_bounds(limit, chunk)
        self._pool = pool
        self._form = form
        self._instrument = instrument
        self._interval = interval
        self._start = start
        self._end = end
        self._limit = limit
        self._chunk = chunk
        self._conn: SyncConnection | None = None
        self._first = b""
        self._left = 0
        self._after: int | None = None
        self._page: CandlePage | None = None
        self.complete = True
        """Whether every row of the page has the read form (else: read it as candles)."""

    async def open(self) -> CandlePage:
        """Read the page's summary (and its first chunk)."""
        return await asyncio.to_thread(self._open)

    def _open(self) -> CandlePage:
        if self._limit <= self._chunk:
            with self._pool.connection() as conn:
                part = read_page(
                    conn, self._form, self._instrument, self._interval, self._start,
                    self._end, self._limit,
                )  # fmt: skip
            return self._opened(part, part.page(self._start, self._end, self._limit))
        params = candle_params(self._instrument, self._interval, self._start, self._end)
        conn = self._conn = self._pool.getconn()
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")  # the pool's are autocommit
            first = read_part(conn, self._form, params, self._chunk)
            if first.rows < self._chunk:  # the whole range fits one chunk
                self._release()
                return self._opened(first, first.page(self._start, self._end, self._limit))
            whole = read_part(conn, self._form, params, self._limit, body=False)
        except BaseException:
            self._release()
            raise
        self._left = whole.rows - first.rows
        self._after = first.after
        return self._opened(first, whole.page(self._start, self._end, self._limit), whole)

    @property
    def whole(self) -> bytes | None:
        """The joined rows of the whole page when one statement read them all (after
        :meth:`open`), else None: take them from :meth:`chunks`."""
        return self._first if self._page is not None and self._conn is None else None

    def _opened(self, first: _Part, page: CandlePage, whole: _Part | None = None) -> CandlePage:
        self._first = first.body
        self.complete = (whole or first).ready == page.rows
        self._page = page
        return page

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The joined rows of the page, a chunk at a time (after :meth:`open`)."""
        try:
            page = self._page
            if page is None:
                raise RuntimeError("open the read before taking its chunks")
            yield self._first
            while (conn := self._conn) is not None and self._left > 0 and self._after is not None:
                params = candle_params(self._instrument, self._interval, self._after, page.end)
                rows = min(self._chunk, self._left)
                part = await asyncio.to_thread(read_part, conn, self._form, params, rows)
                if part.rows == 0:
                    break
                self._left -= part.rows
                self._after = part.after
                yield part.body
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Give the connection back (idempotent)."""
        if self._conn is not None:
            await asyncio.to_thread(self._release)

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.rollback()  # read only: nothing to keep
            finally:
                self._pool.putconn(conn)
