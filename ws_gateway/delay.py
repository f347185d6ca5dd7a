"""Delayed candles, sans I/O: what a plan whose data lags ``delay`` seconds may see.

A delayed plan sees no candle whose close time is later than ``now - delay``
(``docs/protocol.md``, "Delayed data"). Every delayed client of a channel is served by **one
shared view** of that channel per delay, a :class:`DelayedCandles`: a candle channel of its
own (sequence numbers, replay buffer, candle cache, subscribers) whose updates are the live
channel's candles *released* once they are old enough. The hub feeds each view every update
of its live channel (:meth:`DelayedCandles.offer`): a candle already due goes out at once (a
revision of an old candle), a younger one waits, newest revision only, in the view's pending
map; the hub releases what became due on every round of its feed
(:meth:`DelayedCandles.release`, at least four times a second), for every view at once.

So the cost of a delay is one pending map per channel and delay, whatever the number of
clients, and no timer at all: no client holds a timer or a queue of its own, and a client
that joins a view gets a snapshot of its cache like any subscriber of a live channel. A view
numbers its messages in its own epoch (the gateway's epoch and ``-d<delay>``), so a
``resume`` can never mix the live and the delayed sequence numbers.
"""

from __future__ import annotations

from core.candles import Candle
from core.intervals import Interval
from ws_gateway.channels import CandleChannel, Delivery, Framing
from ws_gateway.wire import ChannelKey

NS_PER_S = 1_000_000_000


def delayed_epoch(epoch: str, delay_s: int) -> str:
    """The epoch of the views of delay ``delay_s`` in a gateway of epoch ``epoch``."""
    return f"{epoch}-d{delay_s}"


def due_before(interval: Interval, now_ns: int, delay_s: int) -> int:
    """The open time of the first candle of ``interval`` not yet due at ``now_ns``: every
    candle opening before it closed at or before ``now - delay``."""
    return interval.bucket_start(now_ns - delay_s * NS_PER_S)


class DelayedCandles(CandleChannel):
    """The shared view of one candle channel for clients whose data lags ``delay_s``."""

    def __init__(
        self,
        key: ChannelKey,
        interval: Interval,
        epoch: str,
        delay_s: int,
        replay_buffer: int,
        cache_candles: int,
        framing: Framing,
    ) -> None:
        super().__init__(
            key, interval, delayed_epoch(epoch, delay_s), replay_buffer, cache_candles, framing
        )
        self.delay_s = delay_s
        self.pending: dict[int, Candle] = {}
        """Open time -> the newest revision of a candle not due yet: at most ``cache_candles``
        (the delay's worth of candles: 900 for ``1s`` and 15 minutes)."""
        self.dropped = 0
        """Candles dropped from a full pending map (a delay longer than the cache holds)."""

    def due_before(self, now_ns: int) -> int:
        return due_before(self.interval, now_ns, self.delay_s)

    def offer(self, candle: Candle, now_ns: int) -> Delivery | None:
        """Take an update of the live channel: delivered now if the candle is due, else held
        (a newer revision replaces the one held)."""
        if candle.open_time < self.due_before(now_ns):
            return self.update(candle)
        held = self.pending.get(candle.open_time)
        if held is None or held.revision < candle.revision:
            self.pending[candle.open_time] = candle
            if len(self.pending) > self.cache_candles:
                self.dropped += 1  # bounded: the oldest waits in storage for a snapshot
                del self.pending[min(self.pending)]
        return None

    def release(self, now_ns: int) -> list[Delivery]:
        """The updates of the candles that became due by ``now_ns``, oldest first."""
        if not self.pending:
            return []
        limit = self.due_before(now_ns)
        due = sorted(open_time for open_time in self.pending if open_time < limit)
        deliveries: list[Delivery] = []
        for open_time in due:
            delivery = self.update(self.pending.pop(open_time))
            if delivery is not None:
                deliveries.append(delivery)
        return deliveries

    def seed(self, live: CandleChannel, now_ns: int) -> None:
        """Start from what the live channel holds, from where it is complete (older cached
        candles may have holes between them; storage fills a snapshot's older part)."""
        start = live.complete_from
        if start is None:
            return
        for open_time in sorted(live.cache):
            if open_time >= start:
                self.offer(live.cache[open_time].candle, now_ns)
