"""Candle engine throughput, all seven default intervals, one core.

Contenders, measured in the same run on the same ticks:
- the engine, fed micro-batches as the bus delivers them;
- a naive per-tick baseline: a Python loop updating a dict of bars per interval;
- polars ``group_by_dynamic``: a batch computation with none of the engine's streaming rules
  (no lateness, revisions, duplicates or checkpoints), as a reference for raw grouping speed.

Inputs: the shared Binance aggTrades file looped (timestamps and ids shifted each loop), and
the synthetic generator. Usage: ``python -m bench.engine [--ticks N] [--batch N] [--smoke]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import polars as pl

from bench.common import SHARED_DATA, Figure, measure, print_table
from core.engine import CandleEngine, EngineConfig
from core.intervals import DEFAULT_INTERVALS
from core.ticks import TickBatch
from ingest.files import ReadReport
from ingest.files.reader import read_ticks
from ingest.synthetic import SyntheticFeed

BINANCE_FILE = (
    SHARED_DATA / "binance-btcusdt-2026-01-01" / "BTCUSDT-aggTrades-2026-01-01.head5000.csv"
)


def looped_binance(total: int, batch: int) -> list[TickBatch]:
    """The shared Binance file repeated until ``total`` ticks, cut into batches."""
    (source,) = list(read_ticks(BINANCE_FILE, report=ReadReport()))
    span = int(source.ts_event[-1] - source.ts_event[0]) + 1_000_000_000
    id_step = int(source.trade_id[-1] - source.trade_id[0]) + 1
    loops = -(-total // len(source))
    whole = TickBatch(
        source.instrument,
        source.price_scale,
        source.size_scale,
        np.concatenate([source.trade_id + k * id_step for k in range(loops)])[:total],
        np.tile(source.price, loops)[:total],
        np.tile(source.size, loops)[:total],
        np.tile(source.side, loops)[:total],
        np.concatenate([source.ts_event + k * span for k in range(loops)])[:total],
        np.concatenate([source.ts_recv + k * span for k in range(loops)])[:total],
        np.tile(source.trades, loops)[:total],
    )
    return [whole.take(slice(i, i + batch)) for i in range(0, total, batch)]


def synthetic(total: int, batch: int) -> list[TickBatch]:
    """``total`` synthetic ticks over 4 instruments at 250 ticks/s each."""
    instruments = ("SYNTH:BTCUSD", "SYNTH:ETHUSD", "SYNTH:SOLUSD", "SYNTH:XRPUSD")
    rate = 250.0
    feed = SyntheticFeed(
        instruments=instruments,
        rate=rate,
        duration=total / (rate * len(instruments)),
        seed=7,
        batch_size=batch,
    )
    return list(feed.batches())


def run_engine(batches: Sequence[TickBatch]) -> int:
    engine = CandleEngine(EngineConfig())
    candles = 0
    for batch in batches:
        candles += len(engine.feed(batch).candles)
    return candles + len(engine.flush().candles)


def run_naive(batches: Sequence[TickBatch]) -> int:
    """Per tick and interval: look the bar up in a dict and update it field by field."""
    widths = [interval.ns for interval in DEFAULT_INTERVALS]
    bars: list[dict[tuple[str, int], list[int]]] = [{} for _ in widths]
    for batch in batches:
        instrument = batch.instrument
        rows = zip(
            batch.ts_event.tolist(), batch.price.tolist(), batch.size.tolist(),
            batch.side.tolist(), batch.trades.tolist(), strict=True,
        )  # fmt: skip
        for ts, price, size, side, trades in rows:
            for width, table in zip(widths, bars, strict=True):
                key = (instrument, ts // width)
                bar = table.get(key)
                if bar is None:
                    table[key] = [
                        price,
                        price,
                        price,
                        price,
                        size,
                        price * size,
                        size * (side == 1),
                        trades,
                    ]
                    continue
                if price > bar[1]:
                    bar[1] = price
                elif price < bar[2]:
                    bar[2] = price
                bar[3] = price
                bar[4] += size
                bar[5] += price * size
                bar[6] += size * (side == 1)
                bar[7] += trades
    return sum(len(table) for table in bars)


def polars_frame(batches: Sequence[TickBatch]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "instrument": np.concatenate([np.full(len(b), b.instrument) for b in batches]),
            "ts": pl.Series(np.concatenate([b.ts_event for b in batches])).cast(pl.Datetime("ns")),
            "price": np.concatenate([b.price for b in batches]),
            "size": np.concatenate([b.size for b in batches]),
            "buy": np.concatenate([b.side == 1 for b in batches]),
        }
    ).sort("instrument", "ts")


def run_polars(frame: pl.DataFrame) -> int:
    rows = 0
    for interval in DEFAULT_INTERVALS:
        bars = frame.group_by_dynamic("ts", every=interval.label, group_by="instrument").agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().alias("volume"),
            (pl.col("price") * pl.col("size")).sum().alias("quote"),
            pl.col("size").filter(pl.col("buy")).sum().alias("taker"),
            pl.len().alias("trades"),
        )
        rows += bars.height
    return rows


def bench(name: str, batches: list[TickBatch], naive_ticks: int, repeat: int) -> None:
    ticks = sum(len(b) for b in batches)
    naive_batches, counted = [], 0
    for part in batches:
        if counted >= naive_ticks:
            break
        naive_batches.append(part)
        counted += len(part)
    frame = polars_frame(batches)
    naive = measure("naive per-tick dict", counted, lambda: run_naive(naive_batches), repeat)
    figures: list[Figure] = [
        measure("engine (7 intervals)", ticks, lambda: run_engine(batches), repeat),
        naive,
        measure("polars group_by_dynamic (batch)", ticks, lambda: run_polars(frame), repeat),
    ]
    batch = len(batches[0])
    print_table(f"{name}: {ticks:,} ticks, batches of {batch:,}", figures, naive, "ticks/s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=4096, help="ticks per micro-batch")
    parser.add_argument("--naive-ticks", type=int, default=300_000, help="the baseline is slow")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, one run (for CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.ticks, args.naive_ticks, args.repeat = 20_000, 5_000, 1
    if BINANCE_FILE.exists():
        bench(
            "Binance BTCUSDT aggTrades (looped)",
            looped_binance(args.ticks, args.batch),
            args.naive_ticks,
            args.repeat,
        )
    else:
        print(f"skipping the Binance input: {BINANCE_FILE} is absent")
    bench(
        "synthetic, 4 instruments", synthetic(args.ticks, args.batch), args.naive_ticks, args.repeat
    )


if __name__ == "__main__":
    main()
