"""Channel state, sans I/O: sequence numbers, the replay buffer, the candle cache.

Every update the gateway takes from the bus gets the next sequence number of its channel
(per instrument and interval for candles, per instrument for ticks), starting at 1, and is
encoded once into a :class:`Delivery` that every subscriber of the channel is handed. The last
``replay_buffer`` deliveries stay for ``resume``.

A candle channel also keeps its ``cache_candles`` most recently updated candles, each with the
sequence number of its latest update, for snapshots and for catching up a client whose last
sequence is older than the replay buffer; and a log of the candles it evicted (sequence,
open time, revision), which says which candles to read back from storage for such a client.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.ticks import TickBatch
from ws_gateway.gaps import GapNotice
from ws_gateway.wire import ChannelFrames, ChannelKey, candle_json, tick_json

Framing = Callable[[bytes], bytes]
"""Turns a message into what a client link writes (e.g. a WebSocket frame)."""


Part = tuple[bytes, list["Delivery"]]
"""One channel's share of a round: its deliveries' frames joined, and the deliveries."""


class Client(Protocol):
    """What a channel's subscriber offers the hub (a session, in the gateway).

    None of these may wait: a client that cannot take the bytes now keeps the deliveries in
    its own queue (where candle updates conflate).
    """

    def push(self, data: bytes, deliveries: list[Delivery]) -> None:
        """Take one round of one channel: ``data`` is the deliveries' frames, joined."""
        ...

    def push_parts(self, parts: list[Part]) -> None:
        """Take one round of several channels (in the order they were updated)."""
        ...

    def send_frame(self, frame: bytes) -> None:
        """Take a framed message of this client's own (a reply, a heartbeat)."""
        ...

    def notify(self, notice: GapNotice) -> None:
        """Take a feed-gap notice; a client sends each one at most once."""
        ...

    def quiet(self) -> bool:
        """True when nothing was pushed to the client since the last call."""
        ...


EVICTION_LOG_FACTOR: Final = 8
"""The eviction log remembers this many times ``cache_candles`` evicted candles."""


class Snapshot(NamedTuple):
    """A snapshot message, the ``seq`` it is current to, and the time its oldest item starts
    (a candle's open time, a tick's ``ts_event``; None when it holds none)."""

    payload: bytes
    seq: int
    start_ns: int | None


class Delivery:
    """One message of a channel, encoded once for all of its clients.

    ``frame`` is ``payload`` as the links write it. ``key`` is the open time of the candle it
    updates (newer updates of the same candle replace it when a client lags), None for ticks.
    A tick message is encoded when it is first read (``rows`` until then): a tick channel
    nobody subscribes to costs a sequence number per message, not its JSON (about 12 µs a
    tick), and a resume or a late subscriber reads it as if it had been encoded at once.
    """

    __slots__ = ("_frame", "_payload", "_rows", "channel", "key", "seq")

    def __init__(
        self,
        channel: Channel,
        seq: int,
        payload: bytes | None,
        frame: bytes | None,
        key: int | None,
        rows: TickBatch | None = None,
    ) -> None:
        self.channel = channel
        self.seq = seq
        self._payload = payload
        self._frame = frame
        self.key = key
        self._rows = rows

    @property
    def payload(self) -> bytes:
        payload = self._payload
        if payload is None:
            rows = self._rows
            assert rows is not None
            body = b"[" + b",".join(tick_json(rows, 0, len(rows))) + b"]"
            payload = self._payload = self.channel.frames.update(self.seq, body)
            self._rows = None
        return payload

    @property
    def frame(self) -> bytes:
        frame = self._frame
        if frame is None:
            frame = self._frame = self.channel.framing(self.payload)
        return frame


class Channel:
    """What candle and tick channels share: the key, the sequence and the replay buffer."""

    def __init__(self, key: ChannelKey, epoch: str, replay_buffer: int, framing: Framing) -> None:
        self.key = key
        self.epoch = epoch
        """Names the space of this channel's sequence numbers (``subscribed``, ``resume``)."""
        self.frames = ChannelFrames(key, epoch)
        self.framing = framing
        self.seq = 0
        self.replay: deque[Delivery] = deque(maxlen=replay_buffer)
        self.subscribers: dict[Client, None] = {}
        """The clients subscribed, in subscription order (a dict as an ordered set)."""

    def _deliver(self, body: bytes, key: int | None) -> Delivery:
        self.seq += 1
        payload = self.frames.update(self.seq, body)
        return self._keep(Delivery(self, self.seq, payload, self.framing(payload), key))

    def _keep(self, delivery: Delivery) -> Delivery:
        self.replay.append(delivery)
        return delivery

    def missed(self, seq: int) -> list[Delivery] | None:
        """The deliveries after ``seq``, if the replay buffer still holds all of them."""
        if seq >= self.seq:
            return []
        if not self.replay or self.replay[0].seq > seq + 1:
            return None
        skip = seq + 1 - self.replay[0].seq
        return list(itertools.islice(self.replay, skip, None))


@dataclass(slots=True)
class Cached:
    """A candle in the cache: the candle, its protocol JSON, the seq of its latest update."""

    candle: Candle
    body: bytes
    seq: int


@dataclass(frozen=True, slots=True)
class Evicted:
    seq: int
    open_time: int
    revision: int


@dataclass(frozen=True, slots=True)
class CatchUp:
    """How to bring a client from an old sequence number to the present exactly: the
    ``candles`` changed since, each as ``(seq, body)`` of its latest update in sequence order,
    and ``dropped``, how many older updates they stand for."""

    updates: list[tuple[int, bytes]]
    dropped: int


class CandleChannel(Channel):
    """A candle channel: one instrument and interval."""

    def __init__(
        self,
        key: ChannelKey,
        interval: Interval,
        epoch: str,
        replay_buffer: int,
        cache_candles: int,
        framing: Framing,
    ) -> None:
        super().__init__(key, epoch, replay_buffer, framing)
        self.interval = interval
        self.cache_candles = cache_candles
        self.cache: OrderedDict[int, Cached] = OrderedDict()
        """Open time -> cached candle, least recently updated first."""
        self.evicted: deque[Evicted] = deque(maxlen=cache_candles * EVICTION_LOG_FACTOR)
        self.log_floor = 0
        """The highest seq of an eviction the log no longer holds."""
        self.first_open_time: int | None = None
        """The oldest candle seen open or closing (not revised): it was open when the gateway
        started or later, so every newer candle has been (or will be) seen."""
        self.evicted_open_time: int | None = None
        """The newest open time ever evicted from the cache."""
        self.stale = 0
        """Updates ignored because the cache already held that revision or a newer one."""

    def update(self, candle: Candle) -> Delivery | None:
        """Take one candle update from the bus; None for a revision already seen (a replay)."""
        open_time = candle.open_time
        cached = self.cache.get(open_time)
        if cached is not None and candle.revision <= cached.candle.revision:
            self.stale += 1
            return None
        body = candle_json(candle)
        delivery = self._deliver(body, open_time)
        if candle.status is not CandleStatus.REVISED and (
            self.first_open_time is None or open_time < self.first_open_time
        ):
            self.first_open_time = open_time
        if cached is None:
            self.cache[open_time] = Cached(candle, body, delivery.seq)
            if len(self.cache) > self.cache_candles:
                self._evict()
        else:
            cached.candle, cached.body, cached.seq = candle, body, delivery.seq
            self.cache.move_to_end(open_time)
        return delivery

    def _evict(self) -> None:
        open_time, old = self.cache.popitem(last=False)
        if len(self.evicted) == self.evicted.maxlen:
            self.log_floor = self.evicted[0].seq
        self.evicted.append(Evicted(old.seq, open_time, old.candle.revision))
        if self.evicted_open_time is None or open_time > self.evicted_open_time:
            self.evicted_open_time = open_time

    # -- snapshots ----------------------------------------------------------------------------

    @property
    def complete_from(self) -> int | None:
        """Every candle opening at or after this time is in the cache (None: nothing seen).

        The engine emits every candle at least once, when it closes, and closes them in
        open-time order: so every candle from :attr:`first_open_time` on has been seen, and
        is in the cache unless evicted since.
        """
        if self.first_open_time is None:
            return None
        if self.evicted_open_time is None:
            return self.first_open_time
        return max(self.first_open_time, self.evicted_open_time + self.interval.ns)

    def cached_since(self, start: int) -> int:
        """How many cached candles open at or after ``start``."""
        return sum(1 for open_time in self.cache if open_time >= start)

    def snapshot(self, count: int, reset: bool, older: Iterable[Candle] = ()) -> Snapshot:
        """A snapshot message of the newest ``count`` candles, current to :attr:`seq`.

        ``older`` are candles from storage; where the cache holds a candle too, the higher
        revision wins (storage lags the bus).
        """
        bars: dict[int, tuple[int, bytes]] = {}
        for candle in older:
            if candle.instrument == self.key.instrument and candle.interval == self.interval:
                bars[candle.open_time] = (candle.revision, candle_json(candle))
        for open_time, cached in self.cache.items():
            known = bars.get(open_time)
            if known is None or known[0] <= cached.candle.revision:
                bars[open_time] = (cached.candle.revision, cached.body)
        newest = sorted(bars)[-count:] if count else []
        payload = self.frames.snapshot(self.seq, reset, [bars[t][1] for t in newest])
        return Snapshot(payload, self.seq, newest[0] if newest else None)

    # -- catching up ----------------------------------------------------------------------------

    def evicted_since(self, seq: int) -> list[Evicted] | None:
        """Evicted candles whose latest update came after ``seq`` (and that the cache does not
        hold again); None when the eviction log no longer reaches back to ``seq``."""
        if seq < self.log_floor:
            return None
        found: dict[int, Evicted] = {}
        for entry in reversed(self.evicted):  # newest evictions first; seqs rise with them
            if entry.seq <= seq:
                break
            if entry.open_time not in self.cache and entry.open_time not in found:
                found[entry.open_time] = entry
        return sorted(found.values(), key=lambda entry: entry.seq)

    def catch_up(self, seq: int, evicted: Iterable[Evicted], stored: Iterable[Candle]) -> CatchUp:
        """The exact catch-up from ``seq``: changed cached candles, plus the ``evicted`` ones
        read back from storage (``stored``: at least the revision the gateway had sent).

        Raises ``LookupError`` when storage lacks one of them or holds an older revision.
        """
        by_time = {candle.open_time: candle for candle in stored}
        updates: list[tuple[int, bytes]] = []
        for entry in evicted:
            candle = by_time.get(entry.open_time)
            if candle is None or candle.revision < entry.revision:
                raise LookupError(f"storage lacks the candle opening at {entry.open_time}")
            updates.append((entry.seq, candle_json(candle)))
        updates.extend((c.seq, c.body) for c in self.cache.values() if c.seq > seq)
        updates.sort(key=lambda update: update[0])
        return CatchUp(updates, self.seq - seq - len(updates))


class TickChannel(Channel):
    """A tick channel: one instrument's trades, ``max_batch`` ticks per message at most.

    Its messages are encoded lazily (:class:`Delivery`), and so are the newest ticks it keeps
    for snapshots: as the batches' rows, until a snapshot asks for them."""

    def __init__(
        self,
        key: ChannelKey,
        epoch: str,
        replay_buffer: int,
        max_batch: int,
        recent: int,
        framing: Framing,
    ) -> None:
        super().__init__(key, epoch, replay_buffer, framing)
        self.max_batch = max_batch
        self.recent = recent
        """How many of the newest ticks a snapshot may hold."""
        self._recent: deque[TickBatch] = deque()
        self._recent_ticks = 0

    def update(self, batch: TickBatch) -> list[Delivery]:
        """Take one tick batch from the bus: one delivery per ``max_batch`` ticks."""
        deliveries = []
        for start in range(0, len(batch), self.max_batch):
            rows = batch.take(slice(start, start + self.max_batch))
            self.seq += 1
            deliveries.append(self._keep(Delivery(self, self.seq, None, None, None, rows)))
            self._remember(rows)
        return deliveries

    def _remember(self, rows: TickBatch) -> None:
        """Keep ``rows`` among the newest ticks; drop whole batches the newest no longer need."""
        self._recent.append(rows)
        self._recent_ticks += len(rows)
        while self._recent and self._recent_ticks - len(self._recent[0]) >= self.recent:
            self._recent_ticks -= len(self._recent.popleft())

    def snapshot(self, count: int, reset: bool) -> Snapshot:
        """A snapshot message of the newest ``count`` ticks (at most :attr:`recent`), current
        to :attr:`seq`."""
        count = min(count, self.recent)
        chunks: list[TickBatch] = []
        held = 0
        for rows in reversed(self._recent):
            if held >= count:
                break
            chunks.append(rows)
            held += len(rows)
        items: list[bytes] = []
        starts: list[int] = []
        skip = max(held - count, 0)  # rows of the oldest chunk taken that are not needed
        for rows in reversed(chunks):
            items.extend(tick_json(rows, skip, len(rows)))
            starts.append(int(rows.ts_event[skip:].min()))
            skip = 0
        payload = self.frames.snapshot(self.seq, reset, items)
        return Snapshot(payload, self.seq, min(starts) if items else None)
