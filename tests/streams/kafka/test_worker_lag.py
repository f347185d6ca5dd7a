"""The candle worker's consumer lag on Kafka (what ``mdp worker`` reports): per partition, the
records published minus those its engines have applied, while the worker is held back (no
records handed to it) and after it is handed the rest; ``/readyz`` says ``lag lagging`` over
the threshold and is ready again once the worker has caught up."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable

from prometheus_client import REGISTRY

from core import codecs
from core.topics import TICKS
from ingest.synthetic import SyntheticFeed
from streams.bus import Record
from streams.consumers import WATCHES
from streams.kafka.bus import KafkaBus
from streams.kafka.engine_worker import EngineWorker, WorkerSettings
from streams.kafka.reader import PartitionReader
from streams.kafka.settings import KafkaSettings
from telemetry.admin import admin_server
from telemetry.readiness import Readiness
from tests.streams.kafka.conftest import PARTITIONS
from tests.telemetry.probe import answer
from tests.telemetry.values import value

LAG = "mdp_consumer_lag_records"
MAX_LAG = 5


async def ticked_until(worker: EngineWorker, holds: Callable[[], bool], what: str) -> None:
    """Run the worker's timer until ``holds()`` (the watch looks at most once a second)."""
    deadline = time.monotonic() + 10
    await worker.tick()
    while not holds():
        assert time.monotonic() < deadline, f"no {what} in time: {worker.watch}"
        await asyncio.sleep(0.1)
        await worker.tick()


async def test_the_worker_lag_is_published_minus_applied_and_readyz_follows_it(
    fresh_topics: str,
) -> None:
    kafka = KafkaSettings(fresh_topics)
    group = f"lag-{uuid.uuid4().hex[:8]}"
    feed = SyntheticFeed(rate=5.0, duration=4.0, seed=7, batch_size=1)
    items = [
        (batch.instrument.encode(), codecs.encode_tick_batch(batch)) for batch in feed.batches()
    ]
    checks = Readiness()
    checks.add("bus", WATCHES.bus_check(time.monotonic, 5.0))
    checks.add("lag", WATCHES.lag_check(MAX_LAG))
    async with KafkaBus(kafka, create_topics=False) as bus, PartitionReader(kafka) as reader:
        worker = EngineWorker(WorkerSettings(kafka=kafka, group=group), bus, reader)
        forget = WATCHES.add(worker.watch)
        try:
            with admin_server(checks=checks) as server:
                worker.assign(range(PARTITIONS))
                await worker.wait_recovered()
                sent: Counter[int] = Counter()
                for record in await bus.topic(TICKS).publish_many(items):
                    sent[record.partition] += 1
                assert len(sent) >= 2, "the instruments spread over several partitions"
                records: dict[int, list[Record]] = defaultdict(list)
                for partition, count in sent.items():
                    records[partition] = await reader.read(TICKS, partition, 0, count)
                # held back: each partition is handed its first record only
                await worker.handle([records[p][0] for p in sorted(records)])

                def lag(partition: int) -> float:
                    labels = {"group": group, "topic": TICKS, "partition": str(partition)}
                    return value(LAG, **labels)

                behind = {p: float(sent[p] - 1) for p in sent}
                await ticked_until(
                    worker, lambda: {p: lag(p) for p in sent} == behind, "lag of the held back"
                )
                assert any(count - 1 > MAX_LAG for count in sent.values())
                status, body = await answer(server.ready_url)
                assert (status, body["detail"], body["checks"]) == (
                    503,
                    "lag lagging",
                    {"bus": "ok", "lag": "lagging"},
                )

                await worker.handle([r for p in sorted(records) for r in records[p][1:]])
                await ticked_until(
                    worker, lambda: all(lag(p) == 0.0 for p in sent), "lag 0 once caught up"
                )
                assert await answer(server.ready_url) == (
                    200,
                    {"status": "ready", "checks": {"bus": "ok", "lag": "ok"}},
                )
        finally:
            forget()
            await worker.close()
    assert all(
        REGISTRY.get_sample_value(LAG, {"group": group, "topic": TICKS, "partition": str(p)})
        is None
        for p in sent
    ), "a worker that stopped is no longer reported"
