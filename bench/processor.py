"""What the processor loop costs per record: the engine's rounds with and without it.

Both contenders turn the same encoded ``md.ticks`` records (synthetic ticks, 10 instruments)
into encoded candle updates with one candle engine per run, in polls of ``--poll`` records:

- ``plain decode + engine + encode`` (the baseline): a hand-written loop that decodes each
  record, feeds the engine, advances its clock and encodes the candles, with no bus;
- ``processor round (engine step)``: :meth:`streams.processor.Processor.handle` with the
  engine runner's step, the registry's decoding and a durability hook and publisher that do
  nothing, so the figure is the loop's own cost on top of the baseline's work.

``python -m bench.processor`` (``--smoke`` for a tiny run).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from bench.common import Figure, measure, print_table
from core import codecs
from core.engine import CandleEngine, EngineConfig
from core.ticks import TickBatch
from core.topics import CANDLES, TICKS
from ingest.synthetic import SyntheticFeed
from streams.bus import Record
from streams.engine_runner import EngineStats, engine_step
from streams.memory import MemoryBus
from streams.processor import Batch, Outcome, Output, Processor

INSTRUMENTS = tuple(f"SYNTH:I{n}USD" for n in range(10))


def records(total: int, ticks_per_record: int) -> list[Record]:
    """``total`` synthetic ticks as ``md.ticks`` records of ``ticks_per_record`` ticks."""
    feed = SyntheticFeed(
        instruments=INSTRUMENTS,
        rate=100.0,
        duration=total / (100.0 * len(INSTRUMENTS)),
        seed=11,
        batch_size=ticks_per_record,
    )
    return [
        Record(
            TICKS, 0, offset, codecs.instrument_key(b.instrument), codecs.encode_tick_batch(b), 0
        )
        for offset, b in enumerate(feed.batches())
    ]


Poll = tuple[list[Record], int]
"""A poll's records and the clock when it is handled (its last receipt time)."""


def polls(all_records: Sequence[Record], size: int) -> list[Poll]:
    cut = [list(all_records[i : i + size]) for i in range(0, len(all_records), size)]
    return [(poll, _last_receipt(poll[-1])) for poll in cut]


def _last_receipt(record: Record) -> int:
    batch = codecs.decode_ticks_message(record.value)
    assert isinstance(batch, TickBatch)
    return int(batch.ts_recv[-1])


def run_plain(batches: Sequence[Poll]) -> int:
    engine = CandleEngine(EngineConfig())
    out = 0
    for poll, now in batches:
        outputs: list[Output] = []
        for record in poll:
            batch = codecs.decode_ticks_message(record.value)
            assert isinstance(batch, TickBatch)
            for candle in engine.feed(batch, now).candles:
                outputs.append((CANDLES, codecs.candle_key(candle), codecs.encode_candle(candle)))
        for candle in engine.advance(now, caught_up=False).candles:
            outputs.append((CANDLES, codecs.candle_key(candle), codecs.encode_candle(candle)))
        out += len(outputs)
    return out


async def _nowhere(outputs: list[Output]) -> None:
    """A publisher that sends nothing: the bus's cost is not the loop's."""


def run_processor(batches: Sequence[Poll]) -> int:
    engine = CandleEngine(EngineConfig())
    stats = EngineStats()
    clock = [0]

    def step(batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
        return Outcome(engine_step(engine, batch, now_ns, stats, "bench", caught_up=False), None)

    async def run() -> None:
        async with MemoryBus(partitions=1) as bus:
            processor = Processor(
                bus, "bench", [TICKS], step, clock=lambda: clock[0], publisher=_nowhere
            )
            for poll, now in batches:
                clock[0] = now
                await processor.handle(poll)

    asyncio.run(run())
    return stats.candles


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=400_000)
    parser.add_argument("--per-record", type=int, default=100, help="ticks per record")
    parser.add_argument("--poll", type=int, default=256, help="records per poll")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="a tiny run (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.ticks, args.repeat = 20_000, 1
    batches = polls(records(args.ticks, args.per_record), args.poll)
    ticks = args.ticks
    print(
        f"synthetic, {len(INSTRUMENTS)} instruments: {ticks:,} ticks in records of"
        f" {args.per_record}, polls of {args.poll} records; 7 intervals"
    )
    plain = measure("plain decode + engine + encode", ticks, lambda: run_plain(batches),
                    args.repeat)  # fmt: skip
    loop = measure("processor round (engine step)", ticks, lambda: run_processor(batches),
                   args.repeat)  # fmt: skip
    figures: list[Figure] = [loop, plain]
    print_table("The processor loop's cost per record", figures, plain, "ticks/s")


if __name__ == "__main__":
    main()
