"""Reading ranges of partitions directly, outside any consumer group (for recovery).

:class:`PartitionReader` is a group-less aiokafka consumer: ``read(topic, partition, start,
end)`` returns exactly the records ``[start, end)``, reading on from where the last read of
that partition ended without seeking again, so a recovery that replays consecutive steps
streams through the log once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Final, Self

import aiokafka
from aiokafka import AIOKafkaConsumer

from streams.bus import Record
from streams.kafka.settings import KafkaSettings

_MS: Final = 1_000_000
_FETCH_TIMEOUT_MS: Final = 1000


class MissingRecordsError(RuntimeError):
    """Records needed are no longer in the log (retention removed them), or never were."""


class PartitionReader:
    """Reads partitions by offset; use as ``async with``."""

    def __init__(self, settings: KafkaSettings, read_timeout: float = 60.0) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.servers,
            client_id=f"{settings.client_id}-reader",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",
            isolation_level="read_committed",
            request_timeout_ms=round(settings.request_timeout * 1000),
            max_partition_fetch_bytes=4 * settings.max_message_bytes,
        )
        self._read_timeout = read_timeout
        self._assigned: set[aiokafka.TopicPartition] = set()
        self._position: dict[aiokafka.TopicPartition, int] = {}
        self._buffer: dict[aiokafka.TopicPartition, deque[Record]] = {}

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._consumer.stop()

    async def bounds(self, topic: str, partition: int) -> tuple[int, int]:
        """The oldest offset still in the log and the next offset to be written."""
        tp = aiokafka.TopicPartition(topic, partition)
        first = (await self._consumer.beginning_offsets([tp]))[tp]
        end = (await self._consumer.end_offsets([tp]))[tp]
        return int(first), int(end)

    async def ends(self, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """The next offset to be written of each of ``partitions`` (one request)."""
        tps = [aiokafka.TopicPartition(topic, partition) for partition in partitions]
        if not tps:
            return {}
        found = await self._consumer.end_offsets(tps)
        return {tp.partition: int(offset) for tp, offset in found.items()}

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """Exactly the records ``[start, end)``; raises :class:`MissingRecordsError` when some
        are gone."""
        if end <= start:
            return []
        out: list[Record] = []
        async for record in self.scan(topic, partition, start, end):
            out.append(record)
        if len(out) != end - start or out[0].offset != start:
            raise MissingRecordsError(
                f"{topic}[{partition}] offsets {start}..{end - 1} are not all in the log"
                f" (found {len(out)})"
            )
        return out

    async def scan(self, topic: str, partition: int, start: int, end: int) -> AsyncIterator[Record]:
        """The records from ``start`` up to (not including) ``end``, as they come."""
        tp = aiokafka.TopicPartition(topic, partition)
        self._assign(tp)
        buffer = self._buffer.setdefault(tp, deque())
        if self._position.get(tp) != start:
            buffer.clear()
            self._consumer.seek(tp, start)
            self._position[tp] = start
        next_offset = start
        while next_offset < end:
            if not buffer:
                batch = await self._consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
                messages = batch.get(tp, [])
                if not messages:
                    first, last = await self.bounds(topic, partition)
                    if next_offset < first or next_offset >= last:
                        raise MissingRecordsError(
                            f"{topic}[{partition}] offset {next_offset} is not in the log"
                            f" (it holds {first}..{last - 1})"
                        )
                    continue
                buffer.extend(
                    Record(
                        topic, partition, m.offset, m.key or b"", m.value or b"", m.timestamp * _MS
                    )
                    for m in messages
                )
            record = buffer[0]
            if record.offset < next_offset:
                buffer.popleft()
                continue
            if record.offset >= end:
                break
            buffer.popleft()
            next_offset = record.offset + 1
            self._position[tp] = next_offset
            yield record

    def _assign(self, tp: aiokafka.TopicPartition) -> None:
        if tp not in self._assigned:
            self._assigned.add(tp)
            self._consumer.assign(list(self._assigned))
            self._position.pop(tp, None)
            for other, position in self._position.items():  # assign() forgot every position
                buffered = self._buffer.get(other)
                self._consumer.seek(other, buffered[-1].offset + 1 if buffered else position)
