"""The candle engine: tick batches in, candle updates and rejected ticks out. No I/O.

A thin shell (the offline ``mdp candles`` command, the embedded runner, a Faust agent) feeds
:class:`~core.ticks.TickBatch` es and :class:`~core.gaps.FeedGap` s and moves the wall clock
on; everything it gets back is data. ``docs/candles.md`` states the rules this module
implements.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
import numpy as np

from core.candles import Candle, CandleStatus
from core.engine import aggregate, checkpoint
from core.engine.config import EmptyPolicy, EngineConfig
from core.engine.gaps import GapMemory, Span, meets
from core.engine.state import Bar, InstrumentState, IntervalState
from core.gaps import FeedGap
from core.numbers import pow10
from core.rejects import RejectedTick, RejectReason
from core.ticks import Tick, TickBatch, batches_by_instrument

_OPEN, _CLOSED, _REVISED = CandleStatus.OPEN, CandleStatus.CLOSED, CandleStatus.REVISED


@dataclass(slots=True)
class EngineOutput:
    """What one call gave back: candle updates in order, refused ticks, ignored duplicates."""

    candles: list[Candle] = field(default_factory=list)
    rejected: list[RejectedTick] = field(default_factory=list)
    duplicates: int = 0

    def extend(self, other: EngineOutput) -> None:
        self.candles.extend(other.candles)
        self.rejected.extend(other.rejected)
        self.duplicates += other.duplicates


class CandleEngine:
    """Builds candles of every configured interval for any number of instruments."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self._sources = self.config.sources()
        self._states: dict[str, InstrumentState] = {}
        self._gaps = GapMemory()

    @property
    def instruments(self) -> list[str]:
        return list(self._states)

    @property
    def gaps(self) -> GapMemory:
        """The feed gaps remembered (for tests)."""
        return self._gaps

    def checkpoint(self) -> bytes:
        """The whole state as bytes; :meth:`restore` continues from it exactly."""
        return checkpoint.dump(self.config, self._states, self._gaps)

    @classmethod
    def restore(cls, data: bytes, config: EngineConfig | None = None) -> CandleEngine:
        """A new engine that continues from :meth:`checkpoint` output (``ValueError`` for
        bytes that are not one, or one taken with other intervals)."""
        engine = cls(config)
        engine._states, engine._gaps = checkpoint.load(data, engine.config)
        return engine

    def restarted(self, now_ns: int) -> None:
        """The feeds start again at the wall clock ``now_ns`` after being stopped with the
        engine (a restart of the whole platform from a checkpoint).

        The time they were stopped is not time they were idle: every instrument's receipt
        clock starts at ``now_ns``, so :meth:`advance` moves its event clock on only by the
        time it stays quiet from here (docs/candles.md, "Idle instruments"). Without this,
        the first call would move each clock on by the time stopped, and the ticks a feed
        sends for that time would come out late or be refused. A throttle time after
        ``now_ns`` (the wall clock was set back meanwhile) moves back to it, so that open
        updates are held back for one throttle at most, not until the clock gets there again.
        """
        for state in self._states.values():
            state.last_recv = now_ns
            for iv in state.intervals:
                iv.last_open_emit = min(iv.last_open_emit, now_ns)

    # -- input ------------------------------------------------------------------------------

    def feed_ticks(self, ticks: Iterable[Tick], now_ns: int | None = None) -> EngineOutput:
        """Convenience for single ticks: batches them per instrument, then :meth:`feed`."""
        out = EngineOutput()
        for batch in batches_by_instrument(ticks):
            out.extend(self.feed(batch, now_ns))
        return out

    def feed(self, batch: TickBatch, now_ns: int | None = None) -> EngineOutput:
        """Apply a batch of one instrument's ticks, in arrival order.

        ``now_ns`` is the wall clock for throttling open-candle updates; by default the
        batch's newest ``ts_recv``.
        """
        out = EngineOutput()
        if not len(batch):
            return out
        state = self._state_for(batch)
        batch = batch.with_scales(state.price_scale, state.size_scale)
        now = int(batch.ts_recv.max()) if now_ns is None else now_ns
        accepted = self._admit(state, batch, out)
        if len(accepted):
            self._apply(batch.instrument, state, accepted, out)
            state.event_high = max(state.event_high, int(accepted.ts_event.max()))
            state.clock = max(state.clock, state.event_high)
        state.last_recv = max(state.last_recv, int(batch.ts_recv.max()))
        self._settle(batch.instrument, state, now, out)
        if len(accepted):
            floor = state.clock - self.config.horizon_ns
            state.seen.add(accepted.trade_id, accepted.ts_event, floor)
        return out

    def mark_gap(self, gap: FeedGap, now_ns: int | None = None) -> EngineOutput:
        """Record that trades of ``gap.instrument`` in ``gap``'s span may be missing.

        Every candle whose interval meets the span is flagged (``Candle.gap``): open ones are
        emitted again at once, closed ones still within the horizon are revised; candles made
        later inside the span (late ticks, new buckets, flat fills) are flagged as they are
        made. Candles entirely behind the horizon are final and stay as they are. A gap
        already recorded changes nothing. ``now_ns`` is the wall clock, as for :meth:`feed`
        (held-back open updates due by then go out); by default the gap's ``ts_recv``.
        """
        out = EngineOutput()
        instrument = gap.instrument
        self._gaps.add(instrument, gap.start_ns, gap.end_ns)
        state = self._states.get(instrument)
        if state is None or not state.started:
            return out  # nothing built yet: the memory flags the candles when they are made
        floor = state.clock - self.config.horizon_ns
        emit_open = self.config.emit_open
        for k, interval in enumerate(self.config.intervals):
            iv = state.intervals[k]
            width = interval.ns
            low = max(gap.start_ns // width, floor // width)  # older buckets are final
            high = (gap.end_ns - 1) // width
            if high < low:
                continue
            bars = iv.bars
            if high - low < len(bars):
                hit = [b for b in range(low, high + 1) if b in bars]
            else:  # a long gap: only the bars that exist matter, not every bucket it covers
                hit = sorted(b for b in bars if low <= b <= high)
            for bucket in hit:
                bar = bars[bucket]
                if bar.gap:
                    continue
                bar.gap = True
                if bucket < iv.closed_upto:
                    out.candles.append(self._candle(instrument, state, k, bucket, _REVISED))
                elif emit_open:  # a flag is news: not held back by the throttle
                    out.candles.append(self._candle(instrument, state, k, bucket, _OPEN))
                    iv.pending.discard(bucket)
        self._settle(instrument, state, gap.ts_recv if now_ns is None else now_ns, out)
        return out

    def advance(self, now_ns: int, *, caught_up: bool = True) -> EngineOutput:
        """Move every instrument's event clock on by the time it has been idle.

        An instrument has been idle since its newest ``ts_recv``, measured on the wall clock
        ``now_ns`` when the shell has read everything its feed holds so far (``caught_up``).
        While the shell is still reading a backlog, the wall clock says nothing: the ticks
        still waiting would look late by the backlog's age. Then idleness is measured on the
        receipt clock instead, the newest ``ts_recv`` the engine has been fed, as the wall
        clock stood when those ticks came in: a backlog read late gives the candles of a live
        run. Quiet instruments close their candles this way; held-back open updates go out
        once the throttle (on ``now_ns``) allows.
        """
        out = EngineOutput()
        states = self._states
        idle_until = now_ns if caught_up else max((s.last_recv for s in states.values()), default=0)
        for instrument, state in states.items():
            state.clock = max(state.clock, state.event_high + (idle_until - state.last_recv))
            self._settle(instrument, state, now_ns, out)
        return out

    def flush(self) -> EngineOutput:
        """End of input: close every open candle (no fills beyond the last trade)."""
        out = EngineOutput()
        for instrument, state in self._states.items():
            for k, iv in enumerate(state.intervals):
                if iv.open:
                    self._close(instrument, state, k, max(iv.open) + 1, out)
        return out

    def finish(self) -> EngineOutput:
        """End of a finite input (a file): :meth:`flush`, except that a candle whose interval
        the input stops inside of (no accepted tick of its instrument at or after its close
        time, like the hour of a file that ends at 00:12) is not final: it comes out ``open``."""
        out = self.flush()
        out.candles[:] = [
            candle
            if self._states[candle.instrument].event_high >= candle.close_time
            else msgspec.structs.replace(candle, status=CandleStatus.OPEN)
            for candle in out.candles
        ]
        return out

    # -- steps ------------------------------------------------------------------------------

    def _state_for(self, batch: TickBatch) -> InstrumentState:
        state = self._states.get(batch.instrument)
        if state is None:
            state = InstrumentState(batch.price_scale, batch.size_scale, len(self.config.intervals))
            self._states[batch.instrument] = state
        elif batch.price_scale > state.price_scale or batch.size_scale > state.size_scale:
            price_factor = pow10(max(0, batch.price_scale - state.price_scale))
            size_factor = pow10(max(0, batch.size_scale - state.size_scale))
            state.rescale(price_factor, size_factor)
            state.price_scale = max(state.price_scale, batch.price_scale)
            state.size_scale = max(state.size_scale, batch.size_scale)
        return state

    def _admit(self, state: InstrumentState, batch: TickBatch, out: EngineOutput) -> TickBatch:
        """Drop repeated trade ids, refuse ticks beyond the horizon; return the rest."""
        ids, ts = batch.trade_id, batch.ts_event
        fresh = ~state.seen.seen(ids)
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
            first = np.zeros(len(ids), dtype=bool)
            first[np.unique(ids, return_index=True)[1]] = True
            fresh &= first
        out.duplicates += int(len(ids) - fresh.sum())
        start = state.clock if state.started else int(ts[0])
        before = np.empty_like(ts)
        before[0] = start
        if len(ts) > 1:
            np.maximum(np.maximum.accumulate(ts)[:-1], start, out=before[1:])
        late = fresh & (ts < before - self.config.horizon_ns)
        if late.any():
            for row in np.flatnonzero(late).tolist():
                behind = (int(before[row]) - int(ts[row])) / 1e9
                out.rejected.append(
                    RejectedTick(
                        batch.tick(row),
                        RejectReason.LATE_BEYOND_HORIZON,
                        f"ts_event is {behind:.3f}s behind the instrument's clock; the horizon"
                        f" is {self.config.horizon_ns / 1e9:g}s",
                    )
                )
            fresh &= ~late
        if fresh.all():
            return batch
        return batch.take(fresh)

    def _apply(
        self, instrument: str, state: InstrumentState, batch: TickBatch, out: EngineOutput
    ) -> None:
        """Merge the accepted ticks into the bars of every interval."""
        order = aggregate.sort_key_order(batch.ts_event, batch.trade_id)
        if order is not None:
            batch = batch.take(order)
        intervals = self.config.intervals
        spans = self._gaps.spans(instrument)
        levels: list[aggregate.Partials] = []
        for k, (interval, source) in enumerate(zip(intervals, self._sources, strict=True)):
            if source is None:
                partials = aggregate.tick_partials(batch, interval.ns)
            else:
                partials = aggregate.coarsen(levels[source], intervals[source].ns, interval.ns)
            levels.append(partials)
            late = _merge(state.intervals[k], partials, self.config.emit_open)
            if spans:
                _flag(state.intervals[k], partials.bucket, interval.ns, spans)
            for bucket in sorted(late):
                self._revise(instrument, state, k, bucket, out)

    def _settle(self, instrument: str, state: InstrumentState, now: int, out: EngineOutput) -> None:
        """Close what the clock has passed, send due open updates, forget what is too old."""
        config = self.config
        watermark = state.clock - config.lateness_ns
        horizon_floor = state.clock - config.horizon_ns
        for k, interval in enumerate(config.intervals):
            iv = state.intervals[k]
            self._close(instrument, state, k, watermark // interval.ns, out)
            if iv.pending and now - iv.last_open_emit >= config.throttle_ns:
                for bucket in sorted(iv.pending):
                    out.candles.append(self._candle(instrument, state, k, bucket, _OPEN))
                iv.pending.clear()
                iv.last_open_emit = now
            iv.evict(horizon_floor // interval.ns, config.horizon_ns // interval.ns + 2)
        if self._gaps.spans(instrument):
            # a span older than every interval's oldest changeable bucket can flag nothing more
            oldest = min(horizon_floor // i.ns * i.ns for i in config.intervals)
            self._gaps.forget_before(instrument, oldest)

    def _close(
        self, instrument: str, state: InstrumentState, k: int, upto: int, out: EngineOutput
    ) -> None:
        """Close every bucket below index ``upto``, filling empty ones under the fill rule."""
        iv = state.intervals[k]
        if upto <= iv.closed_upto:
            return
        ready = sorted(b for b in iv.open if b < upto)
        buckets: Iterable[int] = ready
        if self.config.empty_for(instrument) is EmptyPolicy.FILL:
            if iv.last_closed is not None:
                buckets = range(iv.last_closed[0] + 1, upto)
            elif ready:
                buckets = range(ready[0], upto)
        bars = iv.bars
        spans = self._gaps.spans(instrument)
        width = self.config.intervals[k].ns
        for bucket in buckets:
            bar = bars.get(bucket)
            if bar is None:
                assert iv.last_closed is not None  # a fill range starts after a closed bar
                bar = bars[bucket] = Bar.flat(iv.last_closed[1])
                bar.gap = bool(spans) and meets(spans, bucket * width, (bucket + 1) * width)
            out.candles.append(self._candle(instrument, state, k, bucket, _CLOSED))
            iv.last_closed = (bucket, bar.close)
        iv.open.difference_update(ready)
        iv.pending.difference_update(ready)
        iv.closed_upto = upto

    def _revise(
        self, instrument: str, state: InstrumentState, k: int, bucket: int, out: EngineOutput
    ) -> None:
        """Re-emit a closed bucket changed by late ticks, and the flat bars that follow it."""
        iv = state.intervals[k]
        out.candles.append(self._candle(instrument, state, k, bucket, _REVISED))
        price = iv.bars[bucket].close
        top = bucket
        if self.config.empty_for(instrument) is EmptyPolicy.FILL:
            spans = self._gaps.spans(instrument)
            width = self.config.intervals[k].ns
            following = bucket + 1
            while following < iv.closed_upto:
                bar = iv.bars.get(following)
                if bar is None:
                    flat = iv.bars[following] = Bar.flat(price)
                    flat.gap = bool(spans) and meets(
                        spans, following * width, (following + 1) * width
                    )
                elif bar.trades or bar.close == price:
                    break
                else:
                    bar.open = bar.high = bar.low = bar.close = price
                out.candles.append(self._candle(instrument, state, k, following, _REVISED))
                top = following
                following += 1
        if iv.last_closed is None or top >= iv.last_closed[0]:
            iv.last_closed = (top, iv.bars[top].close)

    def _candle(
        self, instrument: str, state: InstrumentState, k: int, bucket: int, status: CandleStatus
    ) -> Candle:
        bar = state.intervals[k].bars[bucket]
        revision = bar.emitted
        bar.emitted = revision + 1
        interval = self.config.intervals[k]
        traded = bar.trades > 0
        return Candle(
            instrument,
            interval,
            bucket * interval.ns,
            state.price_scale,
            state.size_scale,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            bar.quote,
            bar.taker,
            bar.trades,
            bar.first_id if traded else None,
            bar.last_id if traded else None,
            revision,
            status,
            bar.gap,
        )


def _flag(iv: IntervalState, buckets: aggregate.I64, width: int, spans: list[Span]) -> None:
    """Flag the bars of ``buckets`` (just merged) that meet one of the remembered ``spans``.

    Bucket ``b`` meets ``[s, e)`` exactly when ``s // width <= b <= (e - 1) // width``; those
    bounds are sorted like the spans, so one ``searchsorted`` finds each bucket's candidate.
    """
    first = np.fromiter((s // width for s, _ in spans), np.int64, len(spans))
    last = np.fromiter(((e - 1) // width for _, e in spans), np.int64, len(spans))
    index = np.searchsorted(last, buckets).clip(max=len(spans) - 1)
    hit = (last[index] >= buckets) & (first[index] <= buckets)
    if hit.any():
        bars = iv.bars
        for bucket in buckets[hit].tolist():
            bars[bucket].gap = True


def _merge(iv: IntervalState, partials: aggregate.Partials, track_open: bool) -> list[int]:
    """Fold partial bars into an interval's bars; return the closed buckets they changed."""
    bars = iv.bars
    closed_upto = iv.closed_upto
    late: list[int] = []
    rows = zip(
        partials.bucket.tolist(),
        partials.open.tolist(),
        partials.high.tolist(),
        partials.low.tolist(),
        partials.close.tolist(),
        partials.volume.tolist(),
        partials.quote.tolist(),
        partials.taker.tolist(),
        partials.trades.tolist(),
        partials.first_ts.tolist(),
        partials.first_id.tolist(),
        partials.last_ts.tolist(),
        partials.last_id.tolist(),
        strict=True,
    )
    opened, pending = iv.open, iv.pending
    for bucket, o, h, lo, c, v, q, tb, n, fts, fid, lts, lid in rows:
        bar = bars.get(bucket)
        if bar is None:
            bars[bucket] = Bar(o, h, lo, c, v, q, tb, n, fts, fid, lts, lid)
        else:
            bar.merge(o, h, lo, c, v, q, tb, n, fts, fid, lts, lid)
        if bucket < closed_upto:
            late.append(bucket)
        else:
            opened.add(bucket)
            if track_open:
                pending.add(bucket)
    return late
