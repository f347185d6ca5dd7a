"""The baseline of ``bench.kafka``: candles the idiomatic Faust way, in a worker of its own.

One message per tick (JSON), one agent, a tumbling one-minute window table keyed by instrument
whose value (open, high, low, close, volume, count) is updated per tick. Once ``--count``
ticks are in, it prints ``baseline: N events in S s`` (first to last event) and stops.

Usage (``bench.kafka`` runs it): ``python -m bench.faust_baseline --bootstrap H:P --topic T
--count N --group G``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import faust


class BenchTick(faust.Record, serializer="json"):
    instrument: str
    price: float
    size: float
    ts: float


def build(bootstrap: str, topic: str, count: int, group: str, datadir: Path) -> faust.App:
    app = faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        autodiscover=False,
        topic_disable_leader=True,
        topic_partitions=4,
        consumer_auto_offset_reset="earliest",
    )
    ticks = app.topic(topic, value_type=BenchTick)
    bars = app.Table("bars", default=lambda: None, partitions=4).tumbling(
        timedelta(minutes=1), expires=timedelta(hours=1)
    )
    seen = {"n": 0, "first": 0.0}

    async def candles(stream: Any) -> None:
        async for tick in stream:  # keyed by instrument: the table is co-partitioned
            if not seen["n"]:
                seen["first"] = time.perf_counter()
            bar = bars[tick.instrument].value()
            if bar is None:
                bar = (tick.price, tick.price, tick.price, tick.price, tick.size, 1)
            else:
                o, h, lo, _c, v, n = bar
                bar = (o, max(h, tick.price), min(lo, tick.price), tick.price, v + tick.size, n + 1)
            bars[tick.instrument] = bar
            seen["n"] += 1
            if seen["n"] == count:
                seconds = time.perf_counter() - seen["first"]
                print(f"baseline: {count} events in {seconds:.6f} s", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)

    app.agent(ticks, name="baseline")(candles)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--datadir", type=Path, required=True)
    args = parser.parse_args(argv)
    app = build(args.bootstrap, args.topic, args.count, args.group, args.datadir)
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        sys.exit(exc.code)


if __name__ == "__main__":
    main()
