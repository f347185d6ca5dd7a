"""The PostgreSQL (and TimescaleDB) store: asyncio, psycopg 3, a connection pool.

Ticks go in by binary COPY (see :mod:`storage.tick_copy`) straight into ``ticks``, inside a
savepoint. Should a tick be there already (a replay that the offsets did not catch, or a tick
file loaded twice), the unique key refuses the COPY, the savepoint is rolled back, and the
same rows go through a temporary staging table and ``INSERT ... ON CONFLICT DO NOTHING``:
exact duplicates are skipped and the rest is written. The fast path costs only the key's
index; the slow one is taken only when there are duplicates. Candles go through a staging
table too, and an upsert that keeps the highest revision. Feed gaps, rare, go in by one
``INSERT ... ON CONFLICT DO NOTHING`` of arrays.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

import numpy as np
import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from core.candles import Candle
from core.gaps import FeedGap, GapReason
from core.intervals import Interval
from core.rejects import RejectedTick
from core.ticks import TickBatch
from storage.candle_rows import (
    CANDLE_COLUMNS,
    READ_COLUMNS,
    candle_copy_line,
    candle_from_row,
    latest_revisions,
)
from storage.migrate import latest_version, migrate_async
from storage.records import Rejection, TopicPartition, WriteReport
from storage.refused import WriteRefusedError
from storage.tick_copy import (
    COPY_HEADER,
    COPY_TRAILER,
    TICK_COLUMNS,
    decode_tick_rows,
    encode_ticks,
)
from storage.times import at_or_after, at_or_before
from storage.unavailable import describe, unavailable_as_error
from telemetry.pools import pool_watched

Connection = psycopg.AsyncConnection[Any]

_INT64_MAX: Final = 2**63 - 1
_TICK_COLUMNS: Final = ", ".join(TICK_COLUMNS)
_CANDLE_COLUMNS: Final = ", ".join(CANDLE_COLUMNS)
_CANDLE_UPDATES: Final = ", ".join(
    f"{name} = excluded.{name}" for name in (*CANDLE_COLUMNS[3:], "updated_at")
)

_STAGING: Final = """
CREATE TEMPORARY TABLE IF NOT EXISTS ticks_stage (LIKE ticks INCLUDING DEFAULTS)
    ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS candles_stage (LIKE candles INCLUDING DEFAULTS)
    ON COMMIT DELETE ROWS;
"""
INSTRUMENTS: Final = "SELECT instrument FROM instruments ORDER BY instrument"
"""Every instrument ever written, sorted (the store's and the history reads' one query)."""
_COPY_TICKS: Final = f"COPY ticks ({_TICK_COLUMNS}) FROM STDIN (FORMAT binary)"
_COPY_TICKS_STAGE: Final = f"COPY ticks_stage ({_TICK_COLUMNS}) FROM STDIN (FORMAT binary)"
_INSERT_STAGED_TICKS: Final = f"""
INSERT INTO ticks ({_TICK_COLUMNS}) SELECT {_TICK_COLUMNS} FROM ticks_stage
ON CONFLICT DO NOTHING
"""
_COPY_CANDLES_STAGE: Final = f"COPY candles_stage ({_CANDLE_COLUMNS}) FROM STDIN"
_UPSERT_STAGED_CANDLES: Final = f"""
INSERT INTO candles ({_CANDLE_COLUMNS}, updated_at)
SELECT {_CANDLE_COLUMNS}, now() FROM candles_stage
ON CONFLICT (instrument, interval, open_time) DO UPDATE SET {_CANDLE_UPDATES}
WHERE candles.revision < excluded.revision
"""
_INSERT_REJECTION: Final = """
INSERT INTO rejected_ticks (rejected_at, instrument, trade_id, reason, detail, payload)
VALUES (coalesce(%s, now()), %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
_INSERT_GAPS: Final = """
INSERT INTO feed_gaps (instrument, start_time, end_time, start_ns, end_ns, reason, detail,
                       noticed, noticed_ns)
SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::bigint[],
                     %s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::bigint[])
ON CONFLICT DO NOTHING
"""
_GAPS_OVERLAPPING: Final = """
SELECT instrument, start_ns, end_ns, reason, detail, noticed_ns FROM feed_gaps
WHERE instrument = %s AND start_ns < %s AND end_ns > %s
ORDER BY start_ns, end_ns, reason
"""
_STORE_OFFSET: Final = """
INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES (%s, %s, %s, %s)
ON CONFLICT (group_id, topic, partition) DO UPDATE
SET next_offset = greatest(consumer_offsets.next_offset, excluded.next_offset),
    updated_at = now()
"""
_LAST_TRADES: Final = """
SELECT wanted.instrument, last.trade_id, last.ts_event_ns
FROM (SELECT DISTINCT unnest(%s::text[]) AS instrument) AS wanted
JOIN instruments USING (instrument)
CROSS JOIN LATERAL (
    SELECT trade_id, ts_event_ns FROM ticks
    WHERE ticks.instrument = wanted.instrument
    ORDER BY ts_event DESC, ts_event_ns DESC, trade_id DESC
    LIMIT 1
) AS last
"""
"""Per instrument, a backward scan of the ticks' key (it leads with time) that stops at the
instrument's latest trade: it reads only the ticks of other instruments written since.
Instruments never written (not in ``instruments``) are not looked for, which would read
every tick."""
_TICK_RANGE: Final = """
FROM ticks
WHERE ts_event >= %(lo)s AND ts_event < %(hi)s
  AND ts_event_ns >= %(start)s AND ts_event_ns < %(end)s
  AND instrument = %(instrument)s
"""


DEFAULT_WAIT: Final = 5.0
"""Seconds a call waits for a live connection before the database counts as unavailable."""
RECONNECT_TIMEOUT: Final = 5.0
"""Seconds a pool tries (with its own backoff: 1, 2, 4 s...) to replace a lost connection
before it gives up that attempt; the next call that needs one starts a new attempt. This
bounds the pauses between attempts, so a pool is back within seconds of the database."""


class SchemaNotReadyError(RuntimeError):
    """The database has not been migrated to this code's schema version."""


class PostgresStore:
    """The :class:`~storage.repository.MarketDataStore` on PostgreSQL or TimescaleDB.

    Open it with :meth:`open` (it owns its pool for the length of an ``async with``)."""

    def __init__(self, pool: AsyncConnectionPool[Connection], wait: float = DEFAULT_WAIT) -> None:
        self._pool = pool
        self._wait = wait
        self._known_instruments: set[str] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        migrate: bool = False,
        timeout: float = 30.0,
        wait: float = DEFAULT_WAIT,
    ) -> AsyncIterator[PostgresStore]:
        """A store on the database at ``url``, its pool open for the ``async with`` block.

        ``migrate=True`` first brings the schema up to date; otherwise a database at another
        schema version raises :class:`SchemaNotReadyError`. ``timeout`` bounds the opening.

        Once open, the database may go away and come back: the pool checks each connection
        before lending it and replaces the dead ones (a server restart, a terminated
        backend; see :data:`RECONNECT_TIMEOUT`), and a call that finds no live connection
        within ``wait`` seconds, or loses its connection, raises
        :class:`~storage.unavailable.DatabaseUnavailableError`.
        """
        if migrate:
            await migrate_async(url)
        async with await psycopg.AsyncConnection.connect(
            url, connect_timeout=round(timeout)
        ) as conn:
            await _check_schema(conn)  # before the pool, whose connections need the tables
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=_configure,
            check=AsyncConnectionPool.check_connection,
            reconnect_timeout=RECONNECT_TIMEOUT,
            timeout=timeout,
            name="storage",
        )
        await pool.open(wait=True, timeout=timeout)
        try:
            with pool_watched(pool):  # mdp_db_pool_connections{pool="storage"}
                yield cls(pool, wait)
        finally:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """A checked connection of the pool, for one call."""
        with unavailable_as_error():
            async with self._pool.connection(timeout=self._wait) as conn:
                yield conn

    # -- writing --------------------------------------------------------------------------

    async def write(
        self,
        ticks: Sequence[TickBatch] = (),
        candles: Sequence[Candle] = (),
        rejects: Sequence[RejectedTick | Rejection] = (),
        *,
        gaps: Sequence[FeedGap] = (),
        offsets: Mapping[TopicPartition, int] | None = None,
        group: str | None = None,
    ) -> WriteReport:
        if offsets and group is None:
            raise ValueError("offsets need the consumer group they belong to")
        # In time order, so that the key's b-tree mostly grows at its right edge: a poll of the
        # bus returns one partition's (one instrument's) records after another's.
        batches = sorted((b for b in ticks if len(b)), key=lambda b: int(b.ts_event[0]))
        latest = latest_revisions(candles)
        rejections = [Rejection.of(rejected) for rejected in rejects]
        instruments = (
            {b.instrument for b in batches}
            | {c.instrument for c in latest}
            | {g.instrument for g in gaps}
        )
        new_instruments = sorted(instruments - self._known_instruments)
        try:
            async with self._connection() as conn, conn.transaction():
                if offsets and group is not None and await _written_already(conn, group, offsets):
                    return WriteReport(replayed=True)
                if new_instruments:
                    await conn.execute(
                        "INSERT INTO instruments (instrument) SELECT unnest(%s::text[])"
                        " ON CONFLICT DO NOTHING",
                        (new_instruments,),
                    )
                ticks_written, duplicates = await _write_ticks(conn, batches)
                candles_written = await _upsert_candles(conn, latest)
                rejects_written = await _insert_rejections(conn, rejections)
                gaps_written = await _insert_gaps(conn, gaps)
                if offsets and group is not None:
                    await _store_offsets(conn, group, offsets)
        except psycopg.DataError as exc:  # raised once the transaction is rolled back
            raise WriteRefusedError(describe(exc)) from exc
        self._known_instruments.update(new_instruments)
        return WriteReport(
            ticks_written=ticks_written,
            ticks_duplicate=duplicates,
            candles_written=candles_written,
            candles_ignored=len(candles) - candles_written,
            rejects_written=rejects_written,
            gaps_written=gaps_written,
            gaps_duplicate=len(gaps) - gaps_written,
        )

    async def stored_offsets(self, group: str) -> dict[TopicPartition, int]:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = %s",
                (group,),
            )
            return {
                (topic, partition): offset for topic, partition, offset in await cursor.fetchall()
            }

    # -- reading --------------------------------------------------------------------------

    async def candles(
        self, instrument: str, interval: Interval, start: int, end: int
    ) -> list[Candle]:
        return await self._read_candles(
            "open_time >= %s AND open_time < %s",
            (instrument, interval.label, at_or_after(start), at_or_after(end)),
            interval,
        )

    async def last_candles(
        self, instrument: str, interval: Interval, before: int, count: int
    ) -> list[Candle]:
        if count <= 0:
            return []
        return await self._read_candles(
            "open_time < %s ORDER BY open_time DESC LIMIT %s",
            (instrument, interval.label, at_or_after(before), count),
            interval,
        )

    async def _read_candles(
        self, condition: str, params: tuple[object, ...], interval: Interval
    ) -> list[Candle]:
        """Candles of one instrument and interval (the first two ``params``) that meet
        ``condition`` (which may end in an order and a limit), by open time."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                f"""
                SELECT {READ_COLUMNS} FROM (
                    SELECT *, (extract(epoch FROM open_time) * 1000000000)::bigint AS open_time_ns
                    FROM candles
                    WHERE instrument = %s AND interval = %s AND {condition}
                ) AS found
                ORDER BY open_time
                """,
                params,
            )
            return [candle_from_row(row, interval) for row in await cursor.fetchall()]

    async def ticks(self, instrument: str, start: int, end: int) -> TickBatch:
        bounds = {
            "instrument": instrument,
            "start": start,
            "end": end,
            "lo": at_or_before(start),
            "hi": at_or_before(end - 1) + timedelta(microseconds=1),
        }
        async with self._connection() as conn:
            cursor = await conn.execute(
                f"SELECT count(*), max(scale(price)), max(scale(size)) {_TICK_RANGE}", bounds
            )
            found = await cursor.fetchone()
            assert found is not None
            if not found[0]:
                return TickBatch.empty(instrument)
            price_scale, size_scale = int(found[1]), int(found[2])
            query = f"""
                COPY (
                    SELECT trade_id, (price * %(price_factor)s)::bigint,
                           (size * %(size_factor)s)::bigint, side, ts_event_ns, ts_recv_ns, trades
                    {_TICK_RANGE}
                    ORDER BY ts_event, ts_event_ns, trade_id
                ) TO STDOUT (FORMAT binary)
            """
            params = bounds | {"price_factor": 10**price_scale, "size_factor": 10**size_scale}
            data = bytearray()
            try:
                async with conn.cursor().copy(query, params) as copy:
                    async for chunk in copy:
                        data += chunk
            except errors.NumericValueOutOfRange as exc:
                raise ValueError(
                    f"the ticks of {instrument} in this range do not fit one batch: at"
                    f" {price_scale} price and {size_scale} size decimal places some value"
                    " exceeds 64 bits; ask for a shorter range"
                ) from exc
        rows = decode_tick_rows(bytes(data))
        return TickBatch(
            instrument,
            price_scale,
            size_scale,
            rows["trade_id"].astype(np.int64),
            rows["price"].astype(np.int64),
            rows["size"].astype(np.int64),
            rows["side"].astype(np.int8),
            rows["ts_event"].astype(np.int64),
            rows["ts_recv"].astype(np.int64),
            rows["trades"].astype(np.int64),
        )

    async def gaps(self, instrument: str, start: int, end: int) -> list[FeedGap]:
        async with self._connection() as conn:
            bounds = (min(end, _INT64_MAX), max(start, -_INT64_MAX))  # the columns' range
            cursor = await conn.execute(_GAPS_OVERLAPPING, (instrument, *bounds))
            return [
                FeedGap(
                    instrument=name,
                    start_ns=start_ns,
                    end_ns=end_ns,
                    reason=GapReason(reason),
                    detail=detail,
                    ts_recv=noticed_ns or 0,
                )
                for name, start_ns, end_ns, reason, detail, noticed_ns in await cursor.fetchall()
            ]

    async def last_trades(self, instruments: Sequence[str]) -> dict[str, tuple[int, int]]:
        async with self._connection() as conn:
            cursor = await conn.execute(_LAST_TRADES, (list(instruments),))
            return {
                str(name): (int(trade_id), int(ts_event))
                for name, trade_id, ts_event in await cursor.fetchall()
            }

    async def instruments(self) -> list[str]:
        async with self._connection() as conn:
            cursor = await conn.execute(INSTRUMENTS)
            return [str(instrument) for (instrument,) in await cursor.fetchall()]

    async def rejections(self, instrument: str | None = None) -> list[Rejection]:
        async with self._connection() as conn:
            cursor = await conn.execute(
                """
                SELECT reason, detail, instrument, trade_id, payload,
                       (extract(epoch FROM rejected_at) * 1000000000)::bigint
                FROM rejected_ticks
                WHERE %(instrument)s::text IS NULL OR instrument = %(instrument)s
                ORDER BY rejected_at, id
                """,
                {"instrument": instrument},
            )
            return [Rejection(*row) for row in await cursor.fetchall()]


async def _configure(conn: Connection) -> None:
    """Every pooled connection gets its own staging tables (emptied at each commit)."""
    await conn.execute(_STAGING)
    await conn.commit()


async def _check_schema(conn: Connection) -> None:
    version = 0
    cursor = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if (await cursor.fetchone()) == (True,):
        cursor = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
        row = await cursor.fetchone()
        version = int(row[0]) if row else 0
    if version != latest_version():
        raise SchemaNotReadyError(
            f"the database is at schema version {version}, this code needs"
            f" {latest_version()}: run `mdp db migrate`"
        )


async def _written_already(
    conn: Connection, group: str, offsets: Mapping[TopicPartition, int]
) -> bool:
    """Whether every offset is stored already; locks the group's rows for this transaction."""
    cursor = await conn.execute(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = %s FOR UPDATE",
        (group,),
    )
    stored = {(topic, partition): offset for topic, partition, offset in await cursor.fetchall()}
    return all(
        partition in stored and offset <= stored[partition] for partition, offset in offsets.items()
    )


async def _write_ticks(conn: Connection, batches: list[TickBatch]) -> tuple[int, int]:
    """``(written, duplicates)``: COPY straight in, or through staging if any is stored."""
    if not batches:
        return 0, 0
    payloads = [encode_ticks(batch) for batch in batches]
    total = sum(len(batch) for batch in batches)
    try:
        async with conn.transaction():
            await _copy(conn, _COPY_TICKS, payloads)
        return total, 0
    except errors.UniqueViolation:
        pass
    await conn.execute("TRUNCATE ticks_stage")
    await _copy(conn, _COPY_TICKS_STAGE, payloads)
    cursor = await conn.execute(_INSERT_STAGED_TICKS)
    return cursor.rowcount, total - cursor.rowcount


async def _copy(conn: Connection, statement: str, payloads: list[bytes]) -> None:
    async with conn.cursor().copy(statement.encode()) as copy:
        await copy.write(COPY_HEADER)
        for payload in payloads:
            await copy.write(payload)
        await copy.write(COPY_TRAILER)


async def _upsert_candles(conn: Connection, candles: list[Candle]) -> int:
    if not candles:
        return 0
    await conn.execute("TRUNCATE candles_stage")
    async with conn.cursor().copy(_COPY_CANDLES_STAGE.encode()) as copy:
        await copy.write("".join(candle_copy_line(candle) for candle in candles).encode())
    cursor = await conn.execute(_UPSERT_STAGED_CANDLES.encode())
    return cursor.rowcount


async def _insert_rejections(conn: Connection, rejections: list[Rejection]) -> int:
    if not rejections:
        return 0
    written = 0
    async with conn.cursor() as cursor:
        for rejection in rejections:  # rare: one statement each is plenty
            await cursor.execute(
                _INSERT_REJECTION,
                (
                    None if rejection.rejected_at is None else at_or_before(rejection.rejected_at),
                    rejection.instrument,
                    rejection.trade_id,
                    rejection.reason,
                    rejection.detail,
                    rejection.payload,
                ),
            )
            written += cursor.rowcount
    return written


async def _insert_gaps(conn: Connection, gaps: Sequence[FeedGap]) -> int:
    """Insert the gaps not stored yet; how many were new."""
    if not gaps:
        return 0
    columns = (
        [g.instrument for g in gaps],
        [at_or_before(g.start_ns) for g in gaps],
        [at_or_after(g.end_ns) for g in gaps],
        [g.start_ns for g in gaps],
        [g.end_ns for g in gaps],
        [g.reason.value for g in gaps],
        [g.detail for g in gaps],
        [at_or_before(g.ts_recv) if g.ts_recv else None for g in gaps],
        [g.ts_recv or None for g in gaps],
    )
    cursor = await conn.execute(_INSERT_GAPS, columns)
    return cursor.rowcount


async def _store_offsets(
    conn: Connection, group: str, offsets: Mapping[TopicPartition, int]
) -> None:
    async with conn.cursor() as cursor:
        await cursor.executemany(
            _STORE_OFFSET,
            [(group, topic, partition, offset) for (topic, partition), offset in offsets.items()],
        )
