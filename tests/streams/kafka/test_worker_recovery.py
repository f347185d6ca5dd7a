"""A candle worker's recovery of a partition that fails: tried again at the worker's next
tick when the failure passes (a broker away while the journal was read), and not tried again
when the journal holds an entry of a newer worker (told once, as critical): on a real broker."""

from __future__ import annotations

import logging
import uuid

import pytest

from streams.bus import BusError
from streams.kafka.admin import STEPS
from streams.kafka.bus import KafkaBus
from streams.kafka.engine_worker import EngineWorker, WorkerSettings
from streams.kafka.journal import (
    JOURNAL_VERSION,
    Claim,
    NewerJournalError,
    encode_entry,
    entry_key,
)
from streams.kafka.reader import PartitionReader
from streams.kafka.settings import KafkaSettings

PARTITION = 0


class FlakyReader:
    """A reader whose first ``failures`` reads of the journal's bounds fail as a broker away."""

    def __init__(self, reader: PartitionReader, failures: int) -> None:
        self.reader = reader
        self.failures = failures

    async def bounds(self, topic: str, partition: int) -> tuple[int, int]:
        if topic == STEPS and self.failures:
            self.failures -= 1
            raise BusError("the broker is away (test)")
        return await self.reader.bounds(topic, partition)

    def __getattr__(self, name: str) -> object:
        return getattr(self.reader, name)


async def test_a_failed_recovery_is_tried_again_and_told_once(
    fresh_topics: str, caplog: pytest.LogCaptureFixture
) -> None:
    kafka = KafkaSettings(fresh_topics)
    settings = WorkerSettings(kafka=kafka, group=f"recover-{uuid.uuid4().hex[:8]}")
    caplog.set_level(logging.INFO, "streams.kafka.engine_worker")
    async with KafkaBus(kafka, create_topics=False) as bus, PartitionReader(kafka) as reader:
        flaky = FlakyReader(reader, failures=2)
        worker = EngineWorker(settings, bus, flaky)  # type: ignore[arg-type]
        try:
            worker.assign([PARTITION])
            for _ in range(2):  # failed, then failed again when tried at the tick
                with pytest.raises(BusError, match="the broker is away"):
                    await worker.wait_recovered()
                assert PARTITION not in worker.owned
                await worker.tick()
            await worker.wait_recovered()
            assert PARTITION in worker.owned
            assert flaky.failures == 0
        finally:
            await worker.close()
    told = [r.getMessage() for r in caplog.records if "its recovery failed" in r.getMessage()]
    assert told == [
        f"md.ticks[{PARTITION}]: its recovery failed (BusError: the broker is away (test));"
        " trying again"
    ], "told once for the two failures"
    assert any(f"md.ticks[{PARTITION}] recovered in" in r.getMessage() for r in caplog.records)


async def test_a_newer_workers_entry_stops_the_recovery_for_good(
    fresh_topics: str, caplog: pytest.LogCaptureFixture
) -> None:
    kafka = KafkaSettings(fresh_topics)
    group = f"newer-{uuid.uuid4().hex[:8]}"
    newer = Claim(group, PARTITION, 7, 0, None, v=JOURNAL_VERSION + 1)
    async with KafkaBus(kafka, create_topics=False) as bus, PartitionReader(kafka) as reader:
        await bus.producer.send_and_wait(
            STEPS, encode_entry(newer), key=entry_key(group), partition=PARTITION
        )
        worker = EngineWorker(WorkerSettings(kafka=kafka, group=group), bus, reader)
        try:
            worker.assign([PARTITION])
            for _ in range(3):
                with pytest.raises(NewerJournalError):
                    await worker.wait_recovered()
                await worker.tick()
            assert PARTITION not in worker.owned
        finally:
            await worker.close()
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert [r.getMessage() for r in critical] == [
        f"md.ticks[{PARTITION}] not recovered: journal entry version {JOURNAL_VERSION + 1} was"
        f" written by a newer worker (this one writes {JOURNAL_VERSION}): stop this group's"
        " older workers and run the new version on all of them (docs/scaling.md)"
    ]
