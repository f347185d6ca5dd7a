"""Wire codecs and the in-process bus: what a message costs on the hot path.

Tick batches (round trip: encode then decode, ticks/s), measured in the same run:
- ``core.codecs``: columns as raw little-endian bytes in one MessagePack map;
- baseline: one MessagePack array per tick (msgspec), rebuilt into a ``TickBatch``;
- one JSON object per tick (msgspec.json), rebuilt into a ``TickBatch``.

Candles (round trip, candles/s): ``core.codecs`` against the JSON record of ``core.present``.
Bus (messages/s through ``MemoryBus``: publish, poll, commit) against an ``asyncio.Queue``.

Usage: ``python -m bench.codecs [--ticks N] [--batch N] [--repeat N] [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

import msgspec
import numpy as np

from bench.common import measure, print_table
from bench.engine import synthetic
from core.candles import Candle
from core.codecs import decode_candle, decode_tick_batch, encode_candle, encode_tick_batch
from core.engine import CandleEngine, EngineConfig
from core.present.text import candle_record
from core.ticks import TickBatch
from streams.bus import next_offsets
from streams.memory import MemoryBus

_COLUMNS = ("trade_id", "price", "size", "side", "ts_event", "ts_recv", "trades")


def columnar(batches: Sequence[TickBatch]) -> int:
    return sum(len(decode_tick_batch(encode_tick_batch(batch))) for batch in batches)


def _rebuild(batch: TickBatch, rows: list[list[int]]) -> TickBatch:
    table = np.array(rows, dtype=np.int64).reshape(-1, 7)
    return TickBatch(
        batch.instrument,
        batch.price_scale,
        batch.size_scale,
        table[:, 0].copy(),
        table[:, 1].copy(),
        table[:, 2].copy(),
        table[:, 3].astype(np.int8),
        table[:, 4].copy(),
        table[:, 5].copy(),
        table[:, 6].copy(),
    )


def per_tick_msgpack(batches: Sequence[TickBatch]) -> int:
    total = 0
    for batch in batches:
        rows = np.column_stack([getattr(batch, name) for name in _COLUMNS]).tolist()
        data = msgspec.msgpack.encode(rows)
        total += len(_rebuild(batch, msgspec.msgpack.decode(data, type=list[list[int]])))
    return total


def per_tick_json(batches: Sequence[TickBatch]) -> int:
    total = 0
    for batch in batches:
        table = np.column_stack([getattr(batch, name) for name in _COLUMNS]).tolist()
        data = msgspec.json.encode([dict(zip(_COLUMNS, row, strict=True)) for row in table])
        decoded = msgspec.json.decode(data, type=list[dict[str, int]])
        total += len(_rebuild(batch, [[tick[name] for name in _COLUMNS] for tick in decoded]))
    return total


def candle_codec(candles: Sequence[Candle]) -> int:
    return sum(decode_candle(encode_candle(candle)).trades >= 0 for candle in candles)


def candle_json(candles: Sequence[Candle]) -> int:
    return sum(len(msgspec.json.decode(msgspec.json.encode(candle_record(c)))) > 0 for c in candles)


async def through_bus(values: Sequence[bytes]) -> int:
    async with MemoryBus(partitions=4, capacity=1024) as bus:
        topic = bus.topic("bench")
        sub = topic.subscribe("g")
        seen = 0

        async def consume() -> None:
            nonlocal seen
            while seen < len(values):
                records = await sub.poll(max_records=500, timeout=1.0)
                seen += len(records)
                await sub.commit(next_offsets(records))

        consumer = asyncio.create_task(consume())
        for i, value in enumerate(values):
            await topic.publish(b"key-%d" % (i % 16), value)
        await consumer
        return seen


async def through_queue(values: Sequence[bytes]) -> int:
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)
    seen = 0

    async def consume() -> None:
        nonlocal seen
        while seen < len(values):
            await queue.get()
            seen += 1

    consumer = asyncio.create_task(consume())
    for value in values:
        await queue.put(value)
    await consumer
    return seen


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1024, help="ticks per message")
    parser.add_argument("--messages", type=int, default=200_000, help="through the bus")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, one run (for CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.ticks, args.messages, args.repeat = 20_000, 2_000, 1
    batches = synthetic(args.ticks, args.batch)
    ticks = sum(len(b) for b in batches)
    baseline = measure("per-tick msgpack arrays", ticks, lambda: per_tick_msgpack(batches), 1)
    figures = [
        measure("columnar (core.codecs)", ticks, lambda: columnar(batches), args.repeat),
        baseline,
        measure("per-tick JSON objects", ticks, lambda: per_tick_json(batches), 1),
    ]
    title = f"tick batches, encode + decode: {ticks:,} ticks in messages of {args.batch:,}"
    print_table(title, figures, baseline, "ticks/s")

    engine = CandleEngine(EngineConfig())
    candles = [candle for batch in batches for candle in engine.feed(batch).candles]
    json_figure = measure(
        "JSON record (core.present)", len(candles), lambda: candle_json(candles), 1
    )
    codec_figure = measure(
        "msgpack (core.codecs)", len(candles), lambda: candle_codec(candles), args.repeat
    )
    title = f"candles, encode + decode: {len(candles):,} candles"
    print_table(title, [codec_figure, json_figure], json_figure, "candles/s")

    values = [encode_tick_batch(batches[0])] * args.messages
    queue = measure(
        "asyncio.Queue put + get", len(values), lambda: asyncio.run(through_queue(values)), 1
    )
    bus = measure(
        "MemoryBus publish + poll + commit",
        len(values),
        lambda: asyncio.run(through_bus(values)),
        args.repeat,
    )
    print_table(f"in-process bus: {len(values):,} messages", [bus, queue], queue, "messages/s")


if __name__ == "__main__":
    main()
