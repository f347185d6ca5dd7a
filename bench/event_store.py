"""The event store's append: what one stored event costs, beside one plain INSERT.

Contenders, interleaved on the same PostgreSQL in one run (``--appends`` each, one event of
about 100 bytes per call, each to a new aggregate):

- **plain INSERT transaction (baseline)**: psycopg, one autocommit ``INSERT`` of a row of the
  same shape (id, version, topic, bytes) into a table with the same primary key;
- **append, sync**: :meth:`trading.store.events.EventStore.append` on our recorder over the
  ``eventsourcing`` library's (the table lock that keeps the notification log gap-free, the
  insert checking the expected version and returning the notification id: one transaction,
  one pipeline flush: :mod:`trading.store.recorder`);
- **append, async shell**: the same call awaited from an event loop through
  :class:`trading.store.aio.AsyncRepository` (the worker-thread hop included).

A fourth contender, the same append on psycopg's async connection (no worker thread), was
measured and removed with the code it timed: ``docs/benchmarks.md`` keeps its figures.

Latency per call, p50 and p99 in milliseconds. The default private server runs with fsync
off (the figure is the store's own cost, not the disk's); ``--durable`` turns it on.

Usage: ``python -m bench.event_store [--appends N] [--durable] [--database-url URL] [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import psycopg

from bench.common import scratch_database
from trading.store.aio import AsyncRepository
from trading.store.codec import StateCodec, StructCodec
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.repository import Repository


class OrderNoted(msgspec.Struct, frozen=True, tag="order-noted", tag_field="kind"):
    account: int
    order_id: str
    instrument: str
    price: str
    quantity: str
    ts: int


def _event(n: int) -> OrderNoted:
    return OrderNoted(n % 97, f"{n:032x}", "KRAKEN:XBTUSDT", "64012.5", "0.015", time.time_ns())


def _apply(state: int | None, _: OrderNoted) -> int:
    return (state or 0) + 1


CODEC: StructCodec[OrderNoted] = StructCodec(OrderNoted)

BASELINE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_plain_events (
    originator_id text, originator_version bigint, topic text, state bytea,
    PRIMARY KEY (originator_id, originator_version))
"""


@dataclass(frozen=True, slots=True)
class Spread:
    name: str
    p50_ms: float
    p99_ms: float
    count: int


def spread(name: str, seconds: Sequence[float]) -> Spread:
    ms = sorted(s * 1000 for s in seconds)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return Spread(name, statistics.median(ms), p99, len(ms))


async def bench(url: str, appends: int) -> list[Spread]:
    with Database(StoreSettings(url)) as database, psycopg.connect(url, autocommit=True) as conn:
        database.create_tables()
        conn.execute(BASELINE_TABLE)
        events = EventStore(database, CODEC)
        shell = AsyncRepository(Repository(database, events, _apply, StateCodec(int, "count")))
        insert = "INSERT INTO bench_plain_events VALUES (%s, 1, %s, %s)"
        plain: list[float] = []
        sync: list[float] = []
        shelled: list[float] = []
        for n in range(-20, appends):  # the first 20 of each warm up
            event = _event(n)
            topic, data = CODEC.topic(event), CODEC.encode(event)
            start = time.perf_counter()
            conn.execute(insert, (f"plain:{n}", topic, data))
            plain_done = time.perf_counter()
            events.append(f"sync:{n}", 0, [event])
            sync_done = time.perf_counter()
            await shell.append(f"async:{n}", 0, [event])
            async_done = time.perf_counter()
            if n >= 0:
                plain.append(plain_done - start)
                sync.append(sync_done - plain_done)
                shelled.append(async_done - sync_done)
    return [
        spread("plain INSERT transaction (baseline)", plain),
        spread("append, sync", sync),
        spread("append, async shell", shelled),
    ]


def report(figures: Sequence[Spread]) -> None:
    baseline = figures[0]
    print(f"\n  {'contender':<38} {'p50 ms':>8} {'p99 ms':>8} {'p50 x baseline':>15}")
    for figure in figures:
        ratio = figure.p50_ms / baseline.p50_ms
        print(f"  {figure.name:<38} {figure.p50_ms:>8.3f} {figure.p99_ms:>8.3f} {ratio:>14.1f}x")


def main(argv: Sequence[str] | None = None) -> list[Spread]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--database-url", metavar="URL", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--durable", action="store_true", help="a private server with fsync on")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs (for CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.appends = 30
    with scratch_database(args.database_url, args.durable) as url:
        figures = asyncio.run(bench(url, args.appends))
    print(f"\nevent store append, {args.appends} calls each, one event per call")
    report(figures)
    return figures


if __name__ == "__main__":
    main()
