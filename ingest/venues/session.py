"""One venue feed without I/O: frames and clock readings in, events out.

:class:`FeedSession` joins a venue's protocol (frames to ticks), the
:class:`~ingest.venues.tracker.FeedTracker` (repeats, holes, outages) and the
:class:`~ingest.venues.batcher.MicroBatcher`. The asyncio shell
(:mod:`ingest.venues.runtime`) only moves frames and time through it, so every rule here is
tested without a socket.

Order: a gap of an instrument goes out after the ticks of that instrument received before
it, so that a consumer sees them in the order the feed learnt them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.gaps import FeedGap
from core.ticks import Tick, TickBatch
from ingest.venues.base import BadFrame, Parsed, VenueProtocol
from ingest.venues.batcher import MicroBatcher
from ingest.venues.events import VenueEvent, VenueReject
from ingest.venues.settings import VenueSettings
from ingest.venues.tracker import FeedTracker

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FeedCounters:
    """Running totals of one feed, for a status line."""

    frames: int = 0
    ticks: int = 0
    batches: int = 0
    duplicates: int = 0
    gaps: int = 0
    bad_frames: int = 0
    venue_errors: int = 0
    connects: int = 0
    reconnects: int = 0
    connected: bool = False
    last_error: str | None = None

    def status(self) -> str:
        """One line, e.g. ``connected; 120 frames, 300 ticks, 4 repeats, 1 gap, ...``."""
        state = "connected" if self.connected else "disconnected"
        parts = [
            f"{self.frames:,} frames",
            f"{self.ticks:,} ticks",
            f"{self.duplicates:,} repeats dropped",
            f"{self.gaps:,} gaps",
            f"{self.reconnects:,} reconnects",
            f"{self.bad_frames:,} bad frames",
        ]
        line = f"{state}; {', '.join(parts)}"
        if self.last_error and not self.connected:
            line += f" (last error: {self.last_error})"
        return line


@dataclass(slots=True)
class FrameResult:
    """What one frame gave: events to emit, frames to send back, an error the venue raised."""

    events: list[VenueEvent] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    error: str | None = None


class FeedSession:
    """The state of one feed of ``symbols`` on one venue; see the module docstring.

    ``resume`` maps instruments to their last trade stored before a restart, ``(trade id,
    ts_event)``: the feed starts as if after a drop there (:meth:`FeedTracker.resume`).
    Raises ``ValueError`` (from the protocol) for a symbol the venue cannot have, and for a
    resume point of an instrument not subscribed.
    """

    def __init__(
        self,
        protocol: VenueProtocol,
        symbols: Sequence[str],
        settings: VenueSettings,
        counters: FeedCounters | None = None,
        *,
        resume: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("symbols: a venue feed needs at least one symbol")
        self.protocol = protocol
        self.symbols = tuple(symbols)
        self.instruments = tuple(protocol.instrument(symbol) for symbol in symbols)
        self.counters = counters if counters is not None else FeedCounters()
        self.tracker = FeedTracker(
            self.instruments,
            contiguous=protocol.contiguous_trade_ids,
            grace_ns=VenueSettings.ns(settings.gap_grace),
            window=settings.dedupe_window,
        )
        for instrument, (trade_id, ts_event) in (resume or {}).items():
            self.tracker.resume(instrument, trade_id, ts_event)
        self.batcher = MicroBatcher(settings.batch_max, VenueSettings.ns(settings.batch_wait))

    # -- connection ------------------------------------------------------------------------

    def connected(self, now_ns: int) -> None:
        self.counters.connects += 1
        self.counters.connected = True
        self.tracker.connected(now_ns)

    def disconnected(self, now_ns: int, reason: str) -> list[VenueEvent]:
        """The connection was lost or could not be opened; what was received goes out now."""
        self.counters.connected = False
        self.counters.last_error = reason
        self.tracker.disconnected(now_ns)
        events: list[VenueEvent] = []
        for ticks in self.batcher.take_all():
            events.extend(self._batches(ticks, now_ns))
        return events

    # -- input -----------------------------------------------------------------------------

    def on_frame(self, frame: str | bytes, recv_ns: int) -> FrameResult:
        """One frame from the venue, received at ``recv_ns`` (wall clock)."""
        self.counters.frames += 1
        self.tracker.heard(recv_ns)
        parsed = self._parse(frame, recv_ns)
        result = FrameResult(replies=parsed.replies, error=parsed.error)
        if parsed.error is not None:
            self.counters.venue_errors += 1
        for bad in parsed.bad:
            result.events.append(VenueReject(self.protocol.name, bad, recv_ns))
        self.counters.bad_frames += len(parsed.bad)
        accepted = self.tracker.accept(parsed.ticks, recv_ns, snapshot=parsed.snapshot)
        self.counters.duplicates += accepted.duplicates
        for gap in accepted.gaps:
            result.events.extend(self._gap(gap, recv_ns))
        for tick in accepted.fresh:
            full = self.batcher.add(tick, recv_ns)
            if full is not None:
                result.events.extend(self._batches(full, recv_ns))
        for latest in parsed.latest:
            self.tracker.latest(latest.instrument, latest.trade_id, latest.ts_event, recv_ns)
        result.events.extend(self.on_timer(recv_ns))
        return result

    def on_timer(self, now_ns: int) -> list[VenueEvent]:
        """The wall clock moved: holes past their grace and batches past their wait go out."""
        events: list[VenueEvent] = []
        deadline = self.tracker.next_deadline()
        if deadline is not None and deadline <= now_ns:
            for gap in self.tracker.expire(now_ns):
                events.extend(self._gap(gap, now_ns))
        for ticks in self.batcher.due(now_ns):
            events.extend(self._batches(ticks, now_ns))
        return events

    def next_deadline(self) -> int | None:
        """When :meth:`on_timer` next has work (wall clock), if ever without new frames."""
        deadlines = (self.tracker.next_deadline(), self.batcher.next_due())
        return min((d for d in deadlines if d is not None), default=None)

    def finish(self, now_ns: int) -> list[VenueEvent]:
        """The feed stops: waiting ticks, then open holes and outages as gaps."""
        events: list[VenueEvent] = []
        for ticks in self.batcher.take_all():
            events.extend(self._batches(ticks, now_ns))
        for gap in self.tracker.finish(now_ns):
            self.counters.gaps += 1
            events.append(gap)
        return events

    # -- internals -------------------------------------------------------------------------

    def _parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        try:
            return self.protocol.parse(frame, recv_ns)
        except Exception as exc:  # a protocol must not raise; if it does, the feed goes on
            log.exception("%s: the protocol raised on a frame", self.protocol.name)
            detail = f"the {self.protocol.name} protocol failed: {type(exc).__name__}: {exc}"
            return Parsed(bad=[BadFrame.of("parse_failed", detail, frame)])

    def _gap(self, gap: FeedGap, now_ns: int) -> list[VenueEvent]:
        events: list[VenueEvent] = []
        waiting = self.batcher.take(gap.instrument)
        if waiting is not None:
            events.extend(self._batches(waiting, now_ns))
        self.counters.gaps += 1
        log.warning("%s: feed gap %s (%s)", gap.instrument, gap.reason.value, gap.detail)
        events.append(gap)
        return events

    def _batches(self, ticks: list[Tick], now_ns: int) -> list[VenueEvent]:
        """Ticks as one batch; should their scales not combine into int64 columns, one batch
        per tick, and a tick that fits no batch at all becomes a reject."""
        events: list[VenueEvent] = []
        try:
            events.append(TickBatch.from_ticks(ticks))
        except (ValueError, OverflowError):  # numpy overflows before TickBatch can check
            for tick in ticks:
                try:
                    events.append(TickBatch.from_ticks([tick]))
                except (ValueError, OverflowError) as exc:
                    bad = BadFrame.of("unbatchable_trade", str(exc), repr(tick))
                    self.counters.bad_frames += 1
                    events.append(VenueReject(self.protocol.name, bad, now_ns))
        for event in events:
            if isinstance(event, TickBatch):
                self.counters.batches += 1
                self.counters.ticks += len(event)
        return events
