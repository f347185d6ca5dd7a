"""The embedded platform through a database outage: the replay rate it holds and the time it
takes to store what formed meanwhile, beside the same replay without the outage.

``mdp up``'s platform (:class:`mdp.embedded.Platform`: feed, engine, writer, gateway, HTTP)
replays a synthetic tick file (4 instruments, every default interval) at ``--rate`` ticks/s,
twice, each into a new database of one private PostgreSQL server: first without an outage
(the baseline), then with the server stopped (``pg_ctl stop -m fast``) for ``--outage``
seconds, ``--outage-at`` seconds into the replay, and started again on the same port.

For each run it prints the feed's rate during the outage's window (the same window of the
baseline run) and its ratio to the baseline's, the time the whole replay took, the time
from the database's return until everything published before it was stored (the catch-up;
for the baseline, the storage lag at the same moment), the write buffer's peak (records and
MiB) and how long the feed waited for room on the bus (backpressure).

The server is private (``storage.PostgresServer`` in a ``tempfile.mkdtemp`` folder, fsync
off): the benchmark stops it, so it never uses ``DATABASE_URL``.
Usage: ``python -m bench.outage [--rate N] [--seconds S] [--outage S] [--outage-at S]
[--write-buffer MIB] [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.engine import synthetic
from core.numbers import format_fixed
from core.secrets import DatabaseUrl
from core.ticks import Side
from mdp.embedded import FeedSettings, Platform, PlatformSettings
from storage import PostgresServer
from storage.backlog import DEFAULT_MAX_BYTES

EVENT_RATE = 1000.0
"""Ticks per second of event time in :func:`bench.engine.synthetic`'s ticks."""
SAMPLE_EVERY = 0.05
SIDES = {int(side): side.name.lower() for side in Side}


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    published: int
    stored: int
    paused: bool


@dataclass(slots=True)
class Run:
    """One replay: its samples (seconds from the feed's first tick) and the outage's window."""

    name: str
    window: tuple[float, float]
    samples: list[Sample] = field(default_factory=list)
    peak_held: int = 0
    peak_held_bytes: int = 0

    def published_at(self, at: float) -> int:
        return max((s.published for s in self.samples if s.at <= at), default=0)

    def window_rate(self) -> float:
        start, end = self.window
        return (self.published_at(end) - self.published_at(start)) / (end - start)

    def finished(self) -> float:
        total = self.samples[-1].published
        return next(s.at for s in self.samples if s.published == total)

    def catch_up(self) -> float:
        """From the window's end until all published by then is stored."""
        end = self.window[1]
        due = self.published_at(end)
        return next(s.at for s in self.samples if s.at >= end and s.stored >= due) - end

    def paused_seconds(self) -> float:
        return sum(SAMPLE_EVERY for s in self.samples if s.paused)


def write_ticks(path: Path, ticks: int) -> int:
    """A Parquet file of about ``ticks`` synthetic ticks (the generic layout); their count."""
    batches = synthetic(ticks, 4096)
    columns: dict[str, list[object]] = {
        "instrument": [], "trade_id": [], "price": [], "size": [], "side": [], "ts_event": [],
    }  # fmt: skip
    for b in batches:
        columns["instrument"] += [b.instrument] * len(b)
        columns["trade_id"] += b.trade_id.tolist()
        columns["price"] += [format_fixed(p, b.price_scale) for p in b.price.tolist()]
        columns["size"] += [format_fixed(s, b.size_scale) for s in b.size.tolist()]
        columns["side"] += [SIDES[s] for s in b.side.tolist()]
        columns["ts_event"] += b.ts_event.tolist()
    pq.write_table(pa.table(columns), path)
    return len(columns["trade_id"])


@contextlib.contextmanager
def private_server() -> Iterator[PostgresServer]:
    folder = Path(tempfile.mkdtemp(prefix="mdp-bench-outage-pg-"))
    server = PostgresServer(folder, durable=False)
    try:
        server.start()
        print(f"private PostgreSQL server in {folder} (fsync and synchronous_commit off)")
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def replay(
    server: PostgresServer, path: Path, total: int, rate: float, run: Run, outage: bool, buffer: int
) -> Run:
    url = await asyncio.to_thread(server.create_database, run.name.split()[0].replace("-", "_"))
    settings = PlatformSettings(
        database_url=DatabaseUrl(url),
        feed=FeedSettings(replay=path, speed=rate / EVENT_RATE),
        http_port=0,
        ws_port=0,
        status_every=3600.0,
        write_buffer=buffer,
    )
    platform = Platform(settings, io.StringIO())
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    sampling = asyncio.create_task(sample(platform, run))
    try:
        while not run.samples or run.samples[-1].published == 0:
            if running.done():
                running.result()
            await asyncio.sleep(SAMPLE_EVERY)
        if outage:
            start = time.monotonic() - run.samples[0].at
            await asyncio.sleep(start + run.window[0] - time.monotonic())
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(start + run.window[1] - time.monotonic())
            await asyncio.to_thread(server.start)
            run.window = (run.window[0], time.monotonic() - start)  # as started, in fact
        while not run.samples or run.samples[-1].stored < total:
            if running.done():
                running.result()
            await asyncio.sleep(SAMPLE_EVERY)
    finally:
        stop.set()
        await running
        sampling.cancel()
    assert platform.writer is not None
    run.peak_held = platform.writer.stats.peak_held
    run.peak_held_bytes = platform.writer.stats.peak_held_bytes
    return run


async def sample(platform: Platform, run: Run) -> None:
    start: float | None = None
    while True:
        feed, writer, bus = platform.feed, platform.writer, platform.bus
        if feed is not None and writer is not None and bus is not None and feed.stats.ticks:
            now = time.monotonic()
            start = now if start is None else start
            paused = bus.waiting_publishers > 0
            run.samples.append(Sample(now - start, feed.stats.ticks, writer.stats.ticks, paused))
        await asyncio.sleep(SAMPLE_EVERY)


def report(runs: list[Run], total: int, rate: float) -> None:
    baseline = runs[0]
    start, end = runs[-1].window
    print(
        f"\nreplay of {total:,} ticks at {rate:,.0f} ticks/s; database stopped from"
        f" {start:.1f} s to {end:.1f} s of the outage run"
    )
    print(
        f"  {'run':<22} {'feed ticks/s in window':>23} {'x baseline':>11} {'replay s':>9}"
        f" {'catch-up s':>11} {'peak buffer':>22} {'feed paused s':>14}"
    )
    for run in runs:
        peak = f"{run.peak_held:,} rec, {run.peak_held_bytes / 2**20:.1f} MiB"
        print(
            f"  {run.name:<22} {run.window_rate():>23,.0f}"
            f" {run.window_rate() / baseline.window_rate():>10.2f}x {run.finished():>9.1f}"
            f" {run.catch_up():>11.2f} {peak:>22} {run.paused_seconds():>14.1f}"
        )


async def bench(
    rate: float, seconds: float, outage: float, outage_at: float, buffer: int
) -> list[Run]:
    folder = Path(tempfile.mkdtemp(prefix="mdp-bench-outage-"))
    try:
        path = folder / "ticks.parquet"
        total = write_ticks(path, round(seconds * rate))
        window = (outage_at, outage_at + outage)
        with private_server() as server:
            runs = [
                await replay(server, path, total, rate, Run("baseline (no outage)", window),
                             outage=False, buffer=buffer),
                await replay(server, path, total, rate, Run(f"outage-{outage:g}s", window),
                             outage=True, buffer=buffer),
            ]  # fmt: skip
        runs[0].window = runs[1].window
        report(runs, total, rate)
        return runs
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=5000.0, help="ticks per second replayed")
    parser.add_argument("--seconds", type=float, default=75.0, help="length of the replay")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds without database")
    parser.add_argument("--outage-at", type=float, default=15.0, help="seconds into the replay")
    parser.add_argument(
        "--write-buffer", type=float, default=DEFAULT_MAX_BYTES / 2**20, metavar="MIB"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny inputs (for CI)")
    args = parser.parse_args(argv)
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # as `mdp` does
    if args.smoke:
        args.rate, args.seconds, args.outage, args.outage_at = 2000.0, 6.0, 2.0, 1.0
    buffer = int(args.write_buffer * 2**20)
    return asyncio.run(bench(args.rate, args.seconds, args.outage, args.outage_at, buffer))


if __name__ == "__main__":
    main()
