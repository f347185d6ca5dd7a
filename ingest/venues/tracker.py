"""What a live feed has seen of each instrument's trades: repeats, holes and outages. No I/O.

A venue connection drops, reconnects, re-sends recent trades in a snapshot and now and then
delivers trades out of order. :class:`FeedTracker` turns that into three answers, so that
candles are built from every trade exactly once and the spans the feed could not see are
named instead of silently empty:

- **repeats**: a trade id seen before is dropped (across reconnects, with bounded memory);
- **holes** (venues whose trade ids are contiguous): trade ``n`` followed by ``n + 3`` opens
  a hole ``n+1..n+2``. Trades may fill it until ``grace`` (wall clock) has passed; whatever
  is still missing then becomes one :class:`~core.gaps.FeedGap` of reason ``SEQUENCE``
  spanning from the trade before the hole to the trade after it. A hole open while the
  connection is down waits until ``grace`` after the reconnect, so that the snapshot the
  venue sends on re-subscribing can fill it. A venue that states its latest trade id without
  the trade (a Coinbase heartbeat, :meth:`FeedTracker.latest`) opens a hole up to that id at
  once, as if that trade had come, so that trades dropped before a quiet spell are not
  noticed only when the next trade comes, however late.
- **outages**: a lost connection becomes, per instrument, one ``DISCONNECTED`` gap from the
  last trade seen before the drop to the first new trade after the reconnect (plus one
  nanosecond, as the end is exclusive). It is emitted when that trade arrives, or by
  :meth:`FeedTracker.finish` (ending at the venue-time estimate) if none ever does. Trade
  ids missing across the outage are named in its detail and not reported again as a hole.
- **restarts**: :meth:`FeedTracker.resume` seeds an instrument with the last trade stored
  before the platform was stopped. The feed then starts as if after a drop at that trade: ids
  up to it are repeats (a snapshot re-sending stored trades), and the first new trade closes a
  ``DISCONNECTED`` gap from the stored trade to it.

Every gap is reported exactly once. All times are integers: ``ts_event`` in venue time, the
``now_ns`` arguments in wall-clock time, both UTC nanoseconds.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from core.gaps import FeedGap, GapReason
from core.ticks import Tick

MAX_SETTLED_HOLES: Final = 1024
"""Reported holes remembered per instrument, so that their trades, should they come after
all, pass once and are then repeats. Beyond this, the oldest count as seen."""

_NS_PER_SECOND: Final = 1_000_000_000


@dataclass(slots=True)
class Accepted:
    """The result of one :meth:`FeedTracker.accept`: the new trades, in arrival order, the
    gaps they closed (to be published before them), and how many repeats were dropped."""

    fresh: list[Tick] = field(default_factory=list)
    gaps: list[FeedGap] = field(default_factory=list)
    duplicates: int = 0


@dataclass(slots=True)
class _Hole:
    """Trade ids ``lo..hi`` (inclusive) not seen yet, between two trades that were."""

    lo: int
    hi: int
    before_ts: int
    """``ts_event`` of trade ``lo - 1``."""
    after_ts: int
    """``ts_event`` of trade ``hi + 1``, or the venue time at which the venue named ``hi`` as
    its latest trade."""
    deadline_ns: int | None
    """Wall clock at which it becomes a gap; ``None`` once reported (settled)."""
    named: int | None = None
    """The trade id the venue named as its latest, when that opened the hole up to it."""


@dataclass(slots=True)
class _Outage:
    """A lost connection not yet closed by a new trade of the instrument."""

    start_ns: int
    """Venue time from which trades may be missing: the last trade seen, or an estimate."""
    last_id: int | None
    """The highest trade id seen before the drop (``None``: no trade seen yet)."""
    down_ns: int
    """Wall clock of the drop."""
    up_ns: int | None = None
    """Wall clock of the first reconnect after it."""
    stopped: bool = False
    """The platform was stopped: the outage began at the last stored trade
    (:meth:`FeedTracker.resume`); ``down_ns`` is not known."""


class _Book(Protocol):
    """One instrument's memory of trade ids."""

    max_ts: int | None

    def is_new(self, tick: Tick) -> bool: ...

    def after(self, tick: Tick, outage: _Outage) -> bool:
        """Whether ``tick`` (a new one) is after the outage rather than an older trade."""
        ...

    def record(self, tick: Tick, now_ns: int, settled: bool) -> None: ...

    def seed(self, trade_id: int, ts_event: int) -> None:
        """Before any trade: ``trade_id`` (at ``ts_event``) and every id below it count as
        seen (they were stored before a restart)."""
        ...

    def latest(self, trade_id: int, ts_event: int, now_ns: int) -> None:
        """The venue named ``trade_id`` as its latest trade at venue time ``ts_event``."""
        ...

    def high_id(self) -> int | None: ...

    def next_deadline(self) -> int | None: ...

    def extend_deadlines(self, not_before_ns: int) -> None: ...

    def expire(self, instrument: str, now_ns: int, force: bool) -> list[FeedGap]: ...


class _NumberedBook:
    """Contiguous trade ids: everything up to the highest id seen, except the holes, is seen.

    Memory is the holes, not the ids: ``open`` ones wait for their trades, ``settled`` ones
    were reported (or covered by an outage's gap) and let their trades through should they
    come after all. Ids below the first one seen predate the feed and count as seen (a
    snapshot after a reconnect may reach back that far).
    """

    def __init__(self, grace_ns: int) -> None:
        self.grace_ns = grace_ns
        self.first: int | None = None
        self.high: int | None = None
        self.high_ts = 0
        self.max_ts: int | None = None
        self.open: list[_Hole] = []
        self.settled: list[_Hole] = []

    def high_id(self) -> int | None:
        return self.high

    def _find(self, trade_id: int) -> tuple[list[_Hole], int] | None:
        for holes in (self.open, self.settled):
            k = bisect.bisect_right(holes, trade_id, key=lambda hole: hole.lo) - 1
            if k >= 0 and holes[k].hi >= trade_id:
                return holes, k
        return None

    def is_new(self, tick: Tick) -> bool:
        if self.high is None or tick.trade_id > self.high:
            return True
        assert self.first is not None
        if tick.trade_id < self.first:
            return False
        return self._find(tick.trade_id) is not None

    def after(self, tick: Tick, outage: _Outage) -> bool:
        return outage.last_id is None or tick.trade_id > outage.last_id

    def record(self, tick: Tick, now_ns: int, settled: bool) -> None:
        trade_id, ts = tick.trade_id, tick.ts_event
        self.max_ts = ts if self.max_ts is None else max(self.max_ts, ts)
        if self.high is None:
            self.first = self.high = trade_id
            self.high_ts = ts
            return
        if trade_id > self.high:
            if trade_id > self.high + 1:
                hole = _Hole(self.high + 1, trade_id - 1, self.high_ts, ts, None)
                if settled:
                    self._settle(hole)
                else:
                    hole.deadline_ns = now_ns + self.grace_ns
                    self.open.append(hole)
            self.high, self.high_ts = trade_id, ts
            return
        found = self._find(trade_id)
        assert found is not None, "record() is only called for new trades"
        _fill(*found, trade_id, ts)

    def seed(self, trade_id: int, ts_event: int) -> None:
        self.first = self.high = trade_id  # ids below the first one count as seen
        self.high_ts = self.max_ts = ts_event

    def latest(self, trade_id: int, ts_event: int, now_ns: int) -> None:
        """Ids above the highest seen, up to ``trade_id``, exist: a hole until they come. Its
        span ends at ``ts_event`` (every trade up to ``trade_id`` was made by then), where any
        later hole's starts (every trade after it is made later)."""
        if self.high is None or trade_id <= self.high:
            return
        ts = max(ts_event, self.high_ts)
        deadline = now_ns + self.grace_ns
        self.open.append(_Hole(self.high + 1, trade_id, self.high_ts, ts, deadline, trade_id))
        self.high, self.high_ts = trade_id, ts

    def _settle(self, hole: _Hole) -> None:
        hole.deadline_ns = None
        bisect.insort(self.settled, hole, key=lambda h: h.lo)
        if len(self.settled) > MAX_SETTLED_HOLES:
            del self.settled[0]

    def next_deadline(self) -> int | None:
        return min((hole.deadline_ns for hole in self.open if hole.deadline_ns), default=None)

    def extend_deadlines(self, not_before_ns: int) -> None:
        for hole in self.open:
            hole.deadline_ns = max(hole.deadline_ns or 0, not_before_ns)

    def expire(self, instrument: str, now_ns: int, force: bool) -> list[FeedGap]:
        gaps: list[FeedGap] = []
        for hole in list(self.open):
            if not force and (hole.deadline_ns or 0) > now_ns:
                continue
            self.open.remove(hole)
            self._settle(hole)
            detail = f"{_ids(hole.lo, hole.hi)} missing"
            if hole.named is not None:
                detail += f" (the venue named trade id {hole.named} as its latest)"
            gaps.append(
                FeedGap(
                    instrument=instrument,
                    start_ns=min(hole.before_ts, hole.after_ts),
                    end_ns=max(hole.before_ts, hole.after_ts) + 1,
                    reason=GapReason.SEQUENCE,
                    detail=detail,
                    ts_recv=now_ns,
                )
            )
        return gaps


def _fill(holes: list[_Hole], k: int, trade_id: int, ts: int) -> None:
    """Trade ``trade_id`` of hole ``holes[k]`` arrived: shrink, split or drop the hole."""
    hole = holes[k]
    if hole.lo == hole.hi:
        del holes[k]
    elif trade_id == hole.lo:
        hole.lo, hole.before_ts = trade_id + 1, ts
    elif trade_id == hole.hi:
        hole.hi, hole.after_ts, hole.named = trade_id - 1, ts, None
    else:
        upper = _Hole(trade_id + 1, hole.hi, ts, hole.after_ts, hole.deadline_ns, hole.named)
        hole.hi, hole.after_ts, hole.named = trade_id - 1, ts, None
        holes.insert(k + 1, upper)


class _RecentBook:
    """Trade ids without a contiguous numbering: the last ``window`` ids are remembered."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.seen: set[int] = set()
        self.order: deque[int] = deque()
        self.high: int | None = None
        self.max_ts: int | None = None
        self.floor: int | None = None
        """Ids up to this one were stored before a restart (:meth:`seed`)."""

    def high_id(self) -> int | None:
        return self.high

    def is_new(self, tick: Tick) -> bool:
        if self.floor is not None and tick.trade_id <= self.floor:
            return False
        return tick.trade_id not in self.seen

    def after(self, tick: Tick, outage: _Outage) -> bool:
        return outage.last_id is None or tick.ts_event >= outage.start_ns

    def record(self, tick: Tick, now_ns: int, settled: bool) -> None:
        self.seen.add(tick.trade_id)
        self.order.append(tick.trade_id)
        if len(self.order) > self.window:
            self.seen.discard(self.order.popleft())
        self.high = tick.trade_id if self.high is None else max(self.high, tick.trade_id)
        self.max_ts = tick.ts_event if self.max_ts is None else max(self.max_ts, tick.ts_event)

    def seed(self, trade_id: int, ts_event: int) -> None:
        """Without contiguous ids only the order of ids tells stored trades from new ones:
        the venues' ids grow with time, so ids up to the stored one are taken as stored."""
        self.floor = self.high = trade_id
        self.max_ts = ts_event

    def latest(self, trade_id: int, ts_event: int, now_ns: int) -> None:
        return None  # without contiguous ids, a higher id proves nothing missing

    def next_deadline(self) -> int | None:
        return None

    def extend_deadlines(self, not_before_ns: int) -> None:
        return None

    def expire(self, instrument: str, now_ns: int, force: bool) -> list[FeedGap]:
        return []


class FeedTracker:
    """The trade bookkeeping of one feed (any number of instruments).

    ``instruments`` are the subscribed ones: an outage opens a gap for each of them, traded
    or not. ``contiguous`` says the venue numbers each instrument's trades without holes
    (then holes are detected); ``grace_ns`` is how long a hole may wait to fill;
    ``window`` bounds the ids remembered per instrument when ids are not contiguous.
    """

    def __init__(
        self,
        instruments: Sequence[str],
        *,
        contiguous: bool,
        grace_ns: int,
        window: int = 100_000,
    ) -> None:
        if grace_ns < 0 or window < 1:
            raise ValueError("grace_ns must not be negative and window must be positive")
        self.instruments = tuple(dict.fromkeys(instruments))
        self.contiguous = contiguous
        self.grace_ns = grace_ns
        self.window = window
        self._books: dict[str, _Book] = {}
        self._outages: dict[str, _Outage] = {}
        self._offset_ns = 0
        """Venue time minus wall time, from the latest trade (for estimates)."""
        self._heard_ns: int | None = None
        self._down = False

    # -- connection events -----------------------------------------------------------------

    def heard(self, now_ns: int) -> None:
        """Something arrived from the venue at ``now_ns`` (any frame)."""
        self._heard_ns = now_ns

    def connected(self, now_ns: int) -> None:
        """A connection is up (first or again): holes may expire again, ``grace`` from now."""
        self._down = False
        for outage in self._outages.values():
            if outage.up_ns is None:
                outage.up_ns = now_ns
        for book in self._books.values():
            book.extend_deadlines(now_ns + self.grace_ns)

    def disconnected(self, now_ns: int) -> None:
        """The connection was lost (or refused again): an outage for every instrument.

        Idempotent: an outage still open (no new trade since the last drop) keeps its start.
        """
        self._down = True
        for instrument in dict.fromkeys((*self.instruments, *self._books)):
            if instrument in self._outages:
                continue
            book = self._books.get(instrument)
            if book is not None and book.max_ts is not None:
                start, last_id = book.max_ts, book.high_id()
            else:
                start, last_id = self.venue_time(self._heard_ns or now_ns), None
            self._outages[instrument] = _Outage(start, last_id, now_ns)

    def resume(self, instrument: str, trade_id: int, ts_event: int) -> None:
        """The platform was stopped and starts again: ``instrument``'s last stored trade is
        ``trade_id`` at venue time ``ts_event``. Call it before the feed's first trade.

        The feed then starts as if the connection had dropped right after that trade: trades
        with ids up to ``trade_id`` are repeats (with contiguous ids, the ids below the first
        one seen count as seen; otherwise ids at or below it), and the first new trade closes
        a ``DISCONNECTED`` gap from ``ts_event`` to it, naming the ids missing in between; or
        :meth:`finish` reports it should none come.
        """
        if instrument not in self.instruments:
            raise ValueError(f"resume: {instrument} is not one of the feed's instruments")
        if instrument in self._books:
            raise ValueError(f"resume: {instrument} has had trades already")
        self._book(instrument).seed(trade_id, ts_event)
        self._outages[instrument] = _Outage(ts_event, trade_id, 0, stopped=True)

    def venue_time(self, now_ns: int) -> int:
        """The venue's clock at wall time ``now_ns``, estimated from the latest trade."""
        return max(1, now_ns + self._offset_ns)

    # -- trades ----------------------------------------------------------------------------

    def accept(self, ticks: Iterable[Tick], now_ns: int, snapshot: bool = False) -> Accepted:
        """Sort ``ticks`` (one frame's) into new ones and repeats; close outages they end.

        A snapshot's trades are taken in trade-id order, so that the first one after an
        outage is the earliest.
        """
        result = Accepted()
        if snapshot:
            ticks = sorted(ticks, key=lambda tick: (tick.instrument, tick.trade_id))
        for tick in ticks:
            book = self._book(tick.instrument)
            if not book.is_new(tick):
                result.duplicates += 1
                continue
            outage = self._outages.get(tick.instrument)
            closing = outage is not None and book.after(tick, outage)
            if outage is not None and closing:
                result.gaps.append(self._close(tick, outage, now_ns))
                del self._outages[tick.instrument]
            book.record(tick, now_ns, settled=closing)
            self._offset_ns = tick.ts_event - tick.ts_recv
            result.fresh.append(tick)
        return result

    def latest(self, instrument: str, trade_id: int, ts_event: int, now_ns: int) -> None:
        """The venue says ``instrument``'s trades are numbered up to ``trade_id`` at venue time
        ``ts_event`` (a heartbeat's latest trade id), without sending that trade.

        With contiguous ids, ids above the highest seen open a hole up to ``trade_id`` now, as
        if that trade had come: its trades may still come within ``grace``, else it is a gap.
        Ignored before the instrument's first trade (nothing to measure from) and while an
        outage of it is open (its first new trade settles what the outage missed).
        """
        book = self._books.get(instrument)
        if book is None or instrument in self._outages:
            return
        book.latest(trade_id, ts_event, now_ns)

    def expire(self, now_ns: int) -> list[FeedGap]:
        """Holes whose grace has run out, as gaps (none while the connection is down)."""
        if self._down:
            return []
        gaps: list[FeedGap] = []
        for instrument, book in self._books.items():
            gaps.extend(book.expire(instrument, now_ns, force=False))
        return gaps

    def next_deadline(self) -> int | None:
        """The wall clock at which :meth:`expire` has something to report, if any."""
        if self._down:
            return None
        deadlines = [book.next_deadline() for book in self._books.values()]
        return min((deadline for deadline in deadlines if deadline is not None), default=None)

    def finish(self, now_ns: int) -> list[FeedGap]:
        """The feed stops: every hole still open and every outage not yet closed, as gaps.

        An outage ends at the venue-time estimate of ``now_ns``.
        """
        gaps: list[FeedGap] = []
        for instrument, book in self._books.items():
            gaps.extend(book.expire(instrument, now_ns, force=True))
        end = self.venue_time(now_ns)
        for instrument, outage in self._outages.items():
            gaps.append(
                FeedGap(
                    instrument=instrument,
                    start_ns=outage.start_ns,
                    end_ns=max(end, outage.start_ns + 1),
                    reason=GapReason.DISCONNECTED,
                    detail=f"{_down_for(outage, now_ns)}; no new trade came before the feed "
                    "stopped (the span ends at the estimated venue time)",
                    ts_recv=now_ns,
                )
            )
        self._outages.clear()
        return gaps

    # -- internals -------------------------------------------------------------------------

    def _book(self, instrument: str) -> _Book:
        book = self._books.get(instrument)
        if book is None:
            book = _NumberedBook(self.grace_ns) if self.contiguous else _RecentBook(self.window)
            self._books[instrument] = book
        return book

    def _close(self, tick: Tick, outage: _Outage, now_ns: int) -> FeedGap:
        detail = _down_for(outage, now_ns)
        if self.contiguous and outage.last_id is not None:
            if tick.trade_id == outage.last_id + 1:
                detail += f"; trade ids continue across it ({outage.last_id}, {tick.trade_id})"
            else:
                detail += f"; {_ids(outage.last_id + 1, tick.trade_id - 1)} missing"
        return FeedGap(
            instrument=tick.instrument,
            start_ns=outage.start_ns,
            end_ns=max(tick.ts_event, outage.start_ns) + 1,
            reason=GapReason.DISCONNECTED,
            detail=detail,
            ts_recv=now_ns,
        )


def _ids(lo: int, hi: int) -> str:
    return f"trade id {lo}" if lo == hi else f"trade ids {lo}..{hi}"


def _down_for(outage: _Outage, now_ns: int) -> str:
    if outage.stopped:
        return f"the platform was stopped after the stored trade id {outage.last_id}"
    up = outage.up_ns if outage.up_ns is not None else now_ns
    seconds = (up - outage.down_ns) / _NS_PER_SECOND
    return f"connection lost for {seconds:.3f} s"
