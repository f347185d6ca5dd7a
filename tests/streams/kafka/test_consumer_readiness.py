"""On Kafka: the consumer lag a subscription reports is the records published minus those
consumed, per partition (what the processor loop turns into ``mdp_consumer_lag_records``)."""

from __future__ import annotations

import time
import uuid
from collections import Counter

from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings


async def test_kafka_lag_is_published_minus_consumed_per_partition(kafka_bootstrap: str) -> None:
    published, taken = 30, 11
    name = f"lag.{uuid.uuid4().hex[:8]}"
    async with KafkaBus(KafkaSettings(kafka_bootstrap), partitions=2) as bus:
        topic = bus.topic(name)
        sent: Counter[int] = Counter()
        for record in await topic.publish_many((f"k{i}".encode(), b"x") for i in range(published)):
            sent[record.partition] += 1
        assert set(sent) == {0, 1}
        consumed: Counter[int] = Counter()
        async with bus.subscribe(f"lag-{name}", [name]) as sub:
            deadline = time.monotonic() + 30
            while sum(consumed.values()) < taken and time.monotonic() < deadline:
                for record in await sub.poll(taken - sum(consumed.values()), 0.5):
                    consumed[record.partition] += 1
            assert sum(consumed.values()) == taken
            progress = sub.progress()
    lags = {tp.partition: p.lag for tp, p in progress.items()}
    assert lags == {p: sent[p] - consumed[p] for p in sent}
