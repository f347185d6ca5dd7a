"""Publishing a feed onto the bus: tick batches and feed gaps to ``md.ticks``, bad input to
``md.ticks.rejected``.

A batch holds one instrument's ticks and is keyed by the instrument, so one instrument's
batches stay in order on one partition; a feed gap is keyed the same way, so it travels in
order with the ticks around it.

A tick batch is where a trace starts: the sampler decides once per batch
(:func:`telemetry.tracing.sampled_root`); a sampled batch is published inside an
``ingest.publish`` span and carries its context in the record's headers, so the engine, the
writer and the gateways trace it on. An unsampled batch carries no header.

A publish the bus refuses for a while (Kafka away longer than its request timeout: the
producer gives the batch up, :class:`~streams.bus.BusError`) is tried again, the same record,
with backoff, for as long as it takes (:func:`streams.retry.until_available`): the feed is held
back meanwhile (a live venue's bounded queue fills; a replay waits), the ``bus`` check reads
``blocked``, and the outage is told once, every 30 s while it lasts, and at its end. A record
too large for the bus, or a closed bus, is the caller's. A record the broker had stored before
its answer was lost goes out twice; the engine drops the repeated trade ids and the writer
skips the rows it has.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field

from opentelemetry import trace

from core import codecs
from core.gaps import FeedGap
from core.ticks import TickBatch
from core.topics import TICKS, TICKS_REJECTED
from ingest.files import BadRow
from streams.bus import Bus, BusClosedError, BusError, Headers, MessageTooLargeError
from streams.outage import Backoff
from streams.retry import until_available
from telemetry.metrics import INGEST_BATCHES, INGEST_GAPS, INGEST_TICKS, PerVenue, count_reject
from telemetry.tracing import headers_now, sampled_root

log = logging.getLogger(__name__)

SOURCE = "ingest"
PUBLISH_SPAN = "ingest.publish"

FeedEvent = TickBatch | FeedGap
"""What a feed yields: a batch of one instrument's ticks, or a span it may have missed."""


@dataclass(slots=True)
class FeedStats:
    """What a feed has published so far; ``bad_rows`` counts bad file rows and venue frames."""

    batches: int = 0
    ticks: int = 0
    gaps: int = 0
    bad_rows: int = 0
    finished: bool = False


@dataclass(slots=True)
class FeedPublisher:
    """Publishes a feed's events as they come; rejects heard meanwhile go out before the next.

    Hand :meth:`bad_row` to :class:`ingest.files.ReadReport` as ``on_bad``, and :meth:`reject`
    to a live venue feed: what they hear is published before the next event, in order.
    """

    bus: Bus
    stats: FeedStats = field(default_factory=FeedStats)
    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], object] = log.warning
    """Where an outage of the bus is told."""
    backoff: Callable[[], Backoff] = Backoff
    """The pauses between the attempts of one publish."""
    sending_since: float | None = None
    """When the publish under way began (``None``: none is)."""
    _rejects: list[codecs.RejectedMessage] = field(default_factory=list)
    _ticks_in: PerVenue = field(default_factory=lambda: PerVenue(INGEST_TICKS))
    _batches_in: PerVenue = field(default_factory=lambda: PerVenue(INGEST_BATCHES))
    _gaps_in: PerVenue = field(default_factory=lambda: PerVenue(INGEST_GAPS))

    def bad_row(self, row: BadRow) -> None:
        origin = f"{row.source}:{row.line}" if row.source else f"line {row.line}"
        self.reject(
            codecs.RejectedMessage(
                reason=codecs.RejectCode.BAD_ROW.value,
                detail=row.reason,
                source=SOURCE,
                origin=origin,
            )
        )

    def reject(self, message: codecs.RejectedMessage) -> None:
        self._rejects.append(message)

    def bus_state(self, stale: float) -> str | None:
        """The ``bus`` check of ``/readyz``: ``blocked`` once a publish has waited ``stale``
        seconds (the bus does not take the batches: Kafka away, or in-process consumers
        that do not keep up), else ``None``."""
        since = self.sending_since
        return "blocked" if since is not None and self.clock() - since > stale else None

    async def _send(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> None:
        self.sending_since = self.clock()
        try:
            await until_available(
                lambda: self.bus.topic(topic).publish(key, value, headers=headers),
                "bus",
                within_s=math.inf,
                backoff=self.backoff(),
                clock=self.clock,
                retry_on=(BusError,),
                unless=(MessageTooLargeError, BusClosedError),
                then="holding the feed back, retrying",
                say=self.say,
            )
        finally:
            self.sending_since = None

    async def run(self, events: AsyncIterable[FeedEvent]) -> None:
        async for event in events:
            await self._publish_rejects()
            key = codecs.instrument_key(event.instrument)
            if isinstance(event, FeedGap):
                await self._send(TICKS, key, codecs.encode_feed_gap(event))
                self.stats.gaps += 1
                self._gaps_in(event.instrument).inc()
                continue
            span = sampled_root(PUBLISH_SPAN, {"mdp.instrument": event.instrument})
            if span is None:
                await self._send(TICKS, key, codecs.encode_tick_batch(event))
            else:
                with trace.use_span(span, end_on_exit=True):
                    span.set_attribute("mdp.ticks", len(event))
                    await self._send(
                        TICKS, key, codecs.encode_tick_batch(event), headers=headers_now()
                    )
            self.stats.batches += 1
            self.stats.ticks += len(event)
            self._batches_in(event.instrument).inc()
            self._ticks_in(event.instrument).inc(len(event))
        await self._publish_rejects()
        self.stats.finished = True

    async def _publish_rejects(self) -> None:
        if not self._rejects:
            return
        messages, self._rejects = self._rejects, []
        for message in messages:
            await self._send(TICKS_REJECTED, message.key, codecs.encode_rejected(message))
            self.stats.bad_rows += 1
            count_reject(message.instrument, message.reason)
