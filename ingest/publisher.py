"""Publishing a feed onto the bus: tick batches to ``md.ticks``, bad rows to the rejects.

A batch holds one instrument's ticks and is keyed by the instrument, so one instrument's
batches stay in order on one partition.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field

from core import codecs
from core.ticks import TickBatch
from core.topics import TICKS, TICKS_REJECTED
from ingest.files import BadRow
from streams.bus import Bus

SOURCE = "ingest"


@dataclass(slots=True)
class FeedStats:
    """What a feed has published so far."""

    batches: int = 0
    ticks: int = 0
    bad_rows: int = 0
    finished: bool = False


@dataclass(slots=True)
class FeedPublisher:
    """Publishes batches as they come; bad rows reported by a reader go to the rejects.

    Hand :meth:`bad_row` to :class:`ingest.files.ReadReport` as ``on_bad``: the rows it hears
    are published before the next batch.
    """

    bus: Bus
    stats: FeedStats = field(default_factory=FeedStats)
    _bad: list[BadRow] = field(default_factory=list)

    def bad_row(self, row: BadRow) -> None:
        self._bad.append(row)

    async def run(self, batches: AsyncIterable[TickBatch]) -> None:
        ticks = self.bus.topic(TICKS)
        async for batch in batches:
            await self._publish_bad_rows()
            await ticks.publish(
                codecs.instrument_key(batch.instrument), codecs.encode_tick_batch(batch)
            )
            self.stats.batches += 1
            self.stats.ticks += len(batch)
        await self._publish_bad_rows()
        self.stats.finished = True

    async def _publish_bad_rows(self) -> None:
        if not self._bad:
            return
        rows, self._bad = self._bad, []
        rejects = self.bus.topic(TICKS_REJECTED)
        for row in rows:
            origin = f"{row.source}:{row.line}" if row.source else f"line {row.line}"
            message = codecs.RejectedMessage(
                reason=codecs.RejectCode.BAD_ROW.value,
                detail=row.reason,
                source=SOURCE,
                origin=origin,
            )
            await rejects.publish(message.key, codecs.encode_rejected(message))
            self.stats.bad_rows += 1
