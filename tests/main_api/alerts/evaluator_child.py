"""An alert evaluator in a process of its own, for the kill -9 test: an in-process bus with a
fixed cluster id, fed the same Kraken trades in the same order at every start (so offsets
mean the same thing in every run, as a Kafka log's do; a third at once, the rest paced),
and the evaluator service on it against the test's database, one record per round, until
SIGTERM.

``python -m tests.main_api.alerts.evaluator_child URL SCHEMA TRADES_JSON``
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
from pathlib import Path

from core.ticks import TickBatch
from core.topic_codecs import TICKS_CODEC
from core.topics import TICKS
from ingest.files.reader import read_ticks
from main_api.alerts.runner import EvaluatorService, EvaluatorSettings
from main_api.store import MainStore
from streams.memory import MemoryBus

CLUSTER_ID = "memory-kill-test"
INSTRUMENTS = ("KRAKEN:XBTUSDT", "KRAKEN:XBTUSDA", "KRAKEN:XBTUSDB")
"""The same trades under three names, so that several partitions carry prices."""
PER_RECORD = 5
"""Trades per ``md.ticks`` record."""
PACE_S = 0.005
"""Seconds between the records after the first third: the test kills the evaluator once it has
stored a third, and a replay published at once could end between two of the test's looks
(the evaluator's rounds take well under a millisecond each)."""


def batches(trades: Path) -> list[TickBatch]:
    """What the bus carries, in publish order: each instrument's copy of the trades, a few
    trades per record, the instruments interleaved."""
    (whole,) = list(read_ticks(trades))
    out = []
    for start in range(0, len(whole), PER_RECORD):
        part = whole.take(slice(start, start + PER_RECORD))
        out += [dataclasses.replace(part, instrument=name) for name in INSTRUMENTS]
    return out


async def main(url: str, schema: str, trades: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with MemoryBus(partitions=4) as bus, MainStore.open(url, schema) as store:
        bus.cluster_id = CLUSTER_ID
        topic = bus.topic(TICKS)

        async def feed() -> None:
            records = batches(trades)
            for n, batch in enumerate(records):
                await topic.publish(*TICKS_CODEC.record(batch))
                if n >= len(records) // 3:
                    await asyncio.sleep(PACE_S)

        feeding = asyncio.create_task(feed())
        settings = EvaluatorSettings(max_records=1, poll_timeout=0.05)
        service = EvaluatorService(store, bus, url, settings)
        print("evaluating", flush=True)
        await service.run(stop)
        feeding.cancel()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
