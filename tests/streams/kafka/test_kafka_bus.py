"""The Kafka adapter: the bus contract against a real broker, then what only Kafka adds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest

from streams.bus import MessageTooLargeError
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.streams.contract import BusContract


class TestKafkaBus(BusContract):
    settle_timeout: ClassVar[float] = 20.0
    wait: ClassVar[float] = 10.0

    @pytest.fixture
    async def bus(self, kafka_bootstrap: str, capacity: int | None) -> AsyncIterator[KafkaBus]:
        bus = KafkaBus(KafkaSettings(kafka_bootstrap), partitions=3)
        await asyncio.wait_for(bus.start(), 30)
        yield bus
        await asyncio.wait_for(bus.close(), 30)


async def test_the_cluster_id_is_the_brokers(kafka_bootstrap: str) -> None:
    settings = KafkaSettings(kafka_bootstrap)
    async with KafkaBus(settings) as first, KafkaBus(settings) as second:
        assert first.cluster_id == second.cluster_id
        assert not first.cluster_id.startswith("memory-")


async def test_publish_refuses_an_oversized_record(kafka_bootstrap: str) -> None:
    settings = KafkaSettings(kafka_bootstrap, max_message_bytes=10)
    async with KafkaBus(settings) as bus:
        with pytest.raises(MessageTooLargeError, match="max_message_bytes=10"):
            await bus.topic("kafka.oversized").publish(b"key", b"12345678")
