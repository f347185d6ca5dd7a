"""The synthetic market's history (``mdp up``'s first start): what it costs to make and to
carry through the platform, beside a day of one tick a second (the baseline).

Contenders, for the three default instruments at 20 ticks/s live, measured in the same run:
- the history as ``mdp up`` makes it (``ingest.synthetic_market``: one tick every 15 s, one a
  second over the last quarter of an hour);
- the baseline: one tick a second over the whole span.

For each: the time to generate the ticks (numpy), and the Python work every candle update
costs on its way (the engine, the bus codec both ways, the writer's COPY line, the gateway's
JSON), which is what bounds how soon the chart is full; PostgreSQL's share comes on top.
Usage: ``python -m bench.synthetic_history [--hours H] [--repeat N] [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from core import codecs
from core.candles import Candle
from core.engine import CandleEngine, EngineConfig
from core.ticks import TickBatch
from ingest.synthetic import DEFAULT_INSTRUMENTS, NS_PER_SECOND, SyntheticFeed
from ingest.synthetic_market import SyntheticMarket
from storage.candle_rows import candle_copy_line
from ws_gateway.wire import candle_json

T = TypeVar("T")
RATE = 20.0
NOW = 1_780_000_000 * NS_PER_SECOND


def market_history(hours: float) -> list[TickBatch]:
    """The history ``mdp up`` publishes before its live ticks."""

    out: list[TickBatch] = []

    async def collect() -> None:  # no result: asyncio.run's end would repr it, arrays and all
        market = SyntheticMarket(DEFAULT_INSTRUMENTS, RATE, history=hours * 3600, clock=lambda: NOW)
        ticks = aiter(market)
        try:
            async for batch in ticks:
                if int(batch.ts_event[0]) >= NOW:
                    break
                out.append(batch)
        finally:
            await ticks.aclose()  # type: ignore[attr-defined]

    asyncio.run(collect())
    return out


def dense_history(hours: float) -> list[TickBatch]:
    """The baseline: one tick a second per instrument over the whole span."""
    feed = SyntheticFeed(
        instruments=DEFAULT_INSTRUMENTS,
        rate=1.0,
        duration=hours * 3600,
        start_ns=NOW - round(hours * 3600 * NS_PER_SECOND),
        batch_size=3_600,
        weight=round(RATE),
    )
    return list(feed.batches())


def candles_of(batches: Sequence[TickBatch]) -> list[Candle]:
    engine = CandleEngine(EngineConfig())
    return [candle for batch in batches for candle in engine.feed(batch, NOW).candles]


def carry(candles: Sequence[Candle]) -> None:
    """Each candle update's Python work in the platform: bus codec, writer, gateway."""
    for candle in candles:
        decoded = codecs.decode_candle(codecs.encode_candle(candle))
        candle_copy_line(decoded)
        candle_json(codecs.decode_candle(codecs.encode_candle(candle)))


def timed(action: Callable[[], T], repeat: int) -> tuple[float, T]:
    """The median wall time of ``repeat`` runs of ``action()``, and its result."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="an hour, one run (for CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.hours, args.repeat = 1.0, 1
    print(f"\nsynthetic history of {args.hours:g}h, {len(DEFAULT_INSTRUMENTS)} instruments")
    print(
        f"  {'contender':<30} {'ticks':>9} {'updates':>9} {'generate s':>11}"
        f" {'engine s':>9} {'carry s':>8} {'total s':>8} {'x baseline':>11}"
    )
    rows = []
    for name, make in (
        ("mdp up's history", market_history),
        ("1 tick/s all along (baseline)", dense_history),
    ):
        generate, batches = timed(functools.partial(make, args.hours), args.repeat)
        engine, candles = timed(functools.partial(candles_of, batches), args.repeat)
        carried, _ = timed(functools.partial(carry, candles), args.repeat)
        ticks = sum(len(batch) for batch in batches)
        rows.append((name, ticks, len(candles), generate, engine, carried))
    baseline = sum(rows[-1][3:])
    for name, ticks, updates, generate, engine, carried in rows:
        total = generate + engine + carried
        print(
            f"  {name:<30} {ticks:>9,} {updates:>9,} {generate:>11.3f} {engine:>9.3f}"
            f" {carried:>8.3f} {total:>8.3f} {total / baseline:>10.2f}x"
        )


if __name__ == "__main__":
    main()
