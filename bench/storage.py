"""Storage write throughput against a real PostgreSQL, beside plain INSERT baselines.

Contenders, measured in the same run on the same rows, each run into emptied tables:
- ticks: ``PostgresStore.write`` (binary COPY straight into ``ticks``, under its unique key);
  the same binary COPY into a copy of the table without the key (what the key costs); the
  same ticks written again (a replay the offsets did not catch: COPY refused, then staging
  and ``INSERT ... ON CONFLICT DO NOTHING``); text COPY of rows formatted per tick with
  ``format_fixed`` (the obvious way); and the baseline, ``executemany`` of a plain INSERT;
- candles: ``PostgresStore.write`` (COPY into staging, then one upsert keeping the highest
  revision), new rows and revisions; the baseline, ``executemany`` of the same upsert.

It uses ``--database-url`` (default: ``DATABASE_URL``), in a scratch database created and
dropped here; with neither, a private server of its own in a temporary folder (fsync off
unless ``--durable``).
Usage: ``python -m bench.storage [--ticks N] [--candles N] [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

import psycopg

from bench.common import Figure, print_table, scratch_database
from bench.engine import synthetic
from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.numbers import format_fixed
from core.present.text import iso_utc
from core.ticks import TickBatch
from storage import PostgresStore
from storage.candle_rows import CANDLE_COLUMNS, candle_row
from storage.tick_copy import COPY_HEADER, COPY_TRAILER, TICK_COLUMNS, encode_ticks

_INSERT_TICK = (
    f"INSERT INTO ticks ({', '.join(TICK_COLUMNS)}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_UPSERT_CANDLE = (
    f"INSERT INTO candles ({', '.join(CANDLE_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(CANDLE_COLUMNS))})"
    " ON CONFLICT (instrument, interval, open_time) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in CANDLE_COLUMNS[3:])
    + ", updated_at = now() WHERE candles.revision < excluded.revision"
)
"""The baseline's upsert: row by row, every column the store's own upsert rewrites."""


def tick_rows(batches: Sequence[TickBatch]) -> list[tuple[object, ...]]:
    """Ticks as Python rows of exact decimal text, for the per-row contenders."""
    rows: list[tuple[object, ...]] = []
    for batch in batches:
        columns = zip(
            batch.trade_id.tolist(), batch.price.tolist(), batch.size.tolist(),
            batch.side.tolist(), batch.ts_event.tolist(), batch.ts_recv.tolist(),
            batch.trades.tolist(), strict=True,
        )  # fmt: skip
        for trade_id, price, size, side, ts_event, ts_recv, trades in columns:
            rows.append(
                (
                    batch.instrument,
                    trade_id,
                    format_fixed(price, batch.price_scale),
                    format_fixed(size, batch.size_scale),
                    side,
                    iso_utc(ts_event // 1000 * 1000),
                    iso_utc(ts_recv // 1000 * 1000),
                    ts_event,
                    ts_recv,
                    trades,
                )
            )
    return rows


def make_candles(count: int, revision: int = 0) -> list[Candle]:
    """``count`` one-second candles over 8 instruments, all at ``revision``."""
    second = Interval.parse("1s")
    start = 1_767_225_600 * second.ns
    candles = []
    for k in range(count):
        instrument, slot = f"BENCH:SYM{k % 8}", k // 8
        close = 1_000_000 + (k * 7919) % 5_000 + revision
        candles.append(
            Candle(
                instrument=instrument,
                interval=second,
                open_time=start + slot * second.ns,
                price_scale=2,
                size_scale=6,
                open_raw=1_000_000,
                high_raw=max(close, 1_000_000) + 10,
                low_raw=min(close, 1_000_000) - 10,
                close_raw=close,
                volume_raw=5_000_000 + revision,
                quote_volume_raw=5_000_000 * 1_000_000,
                taker_buy_volume_raw=2_000_000,
                trades=3 + revision,
                first_trade_id=k * 10,
                last_trade_id=k * 10 + 2 + revision,
                revision=revision,
                status=CandleStatus.CLOSED if revision == 0 else CandleStatus.REVISED,
            )
        )
    return candles


async def measure(
    name: str,
    items: int,
    reset: Callable[[], Awaitable[object]],
    action: Callable[[], Awaitable[object]],
    repeat: int,
) -> Figure:
    """Time ``action`` ``repeat`` times after a warm-up, each after an untimed ``reset``."""
    seconds = []
    for run in range(repeat + 1):
        await reset()
        start = time.perf_counter()
        await action()
        if run:
            seconds.append(time.perf_counter() - start)
    return Figure(name, items, seconds)


async def bench(
    url: str, ticks: int, candles: int, baseline_ticks: int, repeat: int, batch: int
) -> None:
    batches = synthetic(ticks, batch)
    ticks = sum(len(b) for b in batches)
    baseline_rows = tick_rows(batches)[:baseline_ticks]
    new_candles, revised = make_candles(candles), make_candles(candles, revision=1)
    candle_rows = [candle_row(c) for c in new_candles]
    baseline_candles = candle_rows[: max(1, candles // 4)]
    async with (
        PostgresStore.open(url) as store,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
    ):

        async def empty() -> None:
            await conn.execute("TRUNCATE ticks, candles, instruments")

        async def ticks_written() -> None:
            await empty()
            await store.write(batches)

        async def candles_written() -> None:
            await empty()
            await store.write(candles=new_candles)

        async def copy_without_key() -> None:
            async with conn.transaction(), conn.cursor() as cursor:
                statement = (
                    f"COPY ticks_no_key ({', '.join(TICK_COLUMNS)}) FROM STDIN (FORMAT binary)"
                )
                async with cursor.copy(statement.encode()) as copy:
                    await copy.write(COPY_HEADER)
                    for each in batches:
                        await copy.write(encode_ticks(each))
                    await copy.write(COPY_TRAILER)

        async def empty_no_key() -> None:
            await conn.execute("DROP TABLE IF EXISTS ticks_no_key")
            await conn.execute("CREATE TABLE ticks_no_key (LIKE ticks INCLUDING DEFAULTS)")

        async def text_copy() -> None:
            async with conn.transaction(), conn.cursor() as cursor:
                statement = f"COPY ticks ({', '.join(TICK_COLUMNS)}) FROM STDIN"
                async with cursor.copy(statement.encode()) as copy:
                    for row in tick_rows(batches):  # formatting is part of this way
                        await copy.write_row(row)

        async def executemany(statement: str, params: Sequence[Sequence[object]]) -> None:
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(statement.encode(), params)

        tick_figures = [
            await measure(
                "store.write (binary COPY)", ticks, empty, lambda: store.write(batches), repeat
            ),
            await measure(
                "binary COPY, no unique key", ticks, empty_no_key, copy_without_key, repeat
            ),
            await measure(
                "replayed (staging + ON CONFLICT)",
                ticks,
                ticks_written,
                lambda: store.write(batches),
                repeat,
            ),
            await measure("text COPY, rows by format_fixed", ticks, empty, text_copy, repeat),
            await measure(
                "executemany INSERT (baseline)",
                len(baseline_rows),
                empty,
                lambda: executemany(_INSERT_TICK, baseline_rows),
                repeat,
            ),
        ]
        candle_figures = [
            await measure(
                "store.write: new candles",
                candles,
                empty,
                lambda: store.write(candles=new_candles),
                repeat,
            ),
            await measure(
                "store.write: higher revisions",
                candles,
                candles_written,
                lambda: store.write(candles=revised),
                repeat,
            ),
            await measure(
                "executemany upsert (baseline)",
                len(baseline_candles),
                empty,
                lambda: executemany(_UPSERT_CANDLE, baseline_candles),
                repeat,
            ),
        ]
        await conn.execute("DROP TABLE IF EXISTS ticks_no_key")
    title = f"tick writes: {ticks:,} ticks, 4 instruments, batches of {batch:,}"
    print_table(title, tick_figures, tick_figures[-1], "ticks/s")
    print_table(
        f"candle upserts: {candles:,} candles", candle_figures, candle_figures[-1], "rows/s"
    )
    median = statistics.median(tick_figures[0].seconds)
    print(f"\n  one write of {ticks:,} ticks: median {median * 1000:,.0f} ms")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--candles", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=4096, help="ticks per TickBatch")
    parser.add_argument("--baseline-ticks", type=int, default=50_000, help="the baseline is slow")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", metavar="URL", default=os.environ.get("DATABASE_URL"))
    parser.add_argument(
        "--durable",
        action="store_true",
        help="a private server with fsync on (default off: measure the writer, not the disk)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, one run (for CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.ticks, args.candles, args.baseline_ticks, args.repeat = 5_000, 400, 1_000, 1
    with scratch_database(args.database_url, args.durable) as url:
        asyncio.run(
            bench(url, args.ticks, args.candles, args.baseline_ticks, args.repeat, args.batch)
        )


if __name__ == "__main__":
    main()
