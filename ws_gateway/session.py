"""One client connection: its requests, its snapshots and catch-ups, its writes.

A :class:`Session` joins three things: the connection's :class:`ConnectionProtocol` (which
checks requests), the :class:`~ws_gateway.hub.Hub` (channels and fan-out) and a :class:`Link`
(the socket: write now unless it is backed up, wait until it drains, close). It is the hub's
:class:`~ws_gateway.channels.Client`: each round of updates is written at once, in one write;
while the socket is backed up, updates wait in its :class:`~ws_gateway.outbox.Outbox`
(conflating) and a writer task drains them; a client too far behind is closed with 4008.
Storage is read only here, for snapshots and catch-ups, never in the fan-out. Feed-gap
notices are sent once per connection (:class:`~ws_gateway.gaps.Told`): live, replayed in
their place on ``resume``, and after a snapshot they reach into.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from core.candles import Candle
from storage.repository import MarketDataStore
from ws_gateway.channels import CandleChannel, Delivery, Part, TickChannel
from ws_gateway.gaps import GapNotice, Told
from ws_gateway.hub import Hub
from ws_gateway.outbox import Item, Outbox
from ws_gateway.protocol import ConnectionProtocol
from ws_gateway.wire import (
    TICKS,
    ChannelKey,
    CloseCode,
    ErrorCode,
    Ping,
    RequestError,
    Resume,
    Subscribe,
    Unsubscribe,
    conflated,
    pong,
    subscribed,
    unsubscribed,
)

log = logging.getLogger(__name__)

STORE_RETRIES = 3
"""Reads of storage retried when the cache moved under them (see :meth:`Session._older`)."""


class Link(Protocol):
    """The socket under a session."""

    @property
    def open(self) -> bool:
        """True while frames may be written."""
        ...

    def offer(self, data: bytes, limit: int) -> bool:
        """Write framed bytes now, without waiting, unless more than ``limit`` bytes are
        buffered already; False when it did not write (nothing is written once closed, but
        that counts as written)."""
        ...

    async def writable(self) -> None:
        """Wait until the buffer has drained below its low mark (or the link closed)."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close the connection with this code and reason."""
        ...


class Directory:
    """Which instruments exist: seen on the bus or configured (the hub's set), else in storage.

    Storage is asked at most once per ``refresh`` seconds.
    """

    def __init__(self, hub: Hub, store: MarketDataStore | None, refresh: float = 5.0) -> None:
        self.hub = hub
        self.store = store
        self.refresh = refresh
        self._asked = -float("inf")

    async def known(self, instrument: str) -> bool:
        if instrument in self.hub.instruments:
            return True
        now = time.monotonic()
        if self.store is None or now - self._asked < self.refresh:
            return False
        self._asked = now
        try:
            self.hub.instruments.update(await self.store.instruments())
        except Exception:
            log.warning("could not list the instruments in storage", exc_info=True)
        return instrument in self.hub.instruments


class Session:
    """One connected client (see the module's doc)."""

    def __init__(
        self,
        hub: Hub,
        link: Link,
        protocol: ConnectionProtocol,
        directory: Directory,
        store: MarketDataStore | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.hub = hub
        self.link = link
        self.protocol = protocol
        self.directory = directory
        self.store = store
        self.clock = clock
        self.limits = protocol.limits
        self._limit = self.limits.client_buffer_bytes
        self.outbox = Outbox(hub.framing)
        self.told = Told(hub.gaps)
        self.closing = False
        self.active = False
        """Whether updates were pushed since the last heartbeat (which it then skips)."""
        self.close_code: int | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    # -- the hub's side ------------------------------------------------------------------------

    def push(self, data: bytes, deliveries: list[Delivery]) -> None:
        if self.closing:
            return
        self.active = True
        if self.outbox.pending or not self.link.offer(data, self._limit):
            self._defer(deliveries)

    def push_parts(self, parts: list[Part]) -> None:
        if self.closing:
            return
        self.active = True
        if self.outbox.pending or not self.link.offer(
            b"".join([data for data, _ in parts]), self._limit
        ):
            self._defer([delivery for _, deliveries in parts for delivery in deliveries])

    def send_frame(self, frame: bytes) -> None:
        if self.closing:
            return
        if self.outbox.pending or not self.link.offer(frame, self._limit):
            self._defer([frame])

    def notify(self, notice: GapNotice) -> None:
        if self.closing or not self.told.first_time(notice):
            return
        self.active = True
        self.send_frame(notice.frame)

    def quiet(self) -> bool:
        active, self.active = self.active, False
        return not active

    def reply(self, payload: bytes) -> None:
        self.send_frame(self.hub.framing(payload))

    def _send_items(self, items: list[Item]) -> None:
        """Send deliveries and frames of this client's own, in order (a replay, a catch-up)."""
        if self.closing or not items:
            return
        data = b"".join([item.frame if isinstance(item, Delivery) else item for item in items])
        if self.outbox.pending or not self.link.offer(data, self._limit):
            self._defer(items)

    def _defer(self, items: Iterable[Item]) -> None:
        now = time.monotonic()
        self.outbox.defer(items, now)
        if not self._check_lag(now) and self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    def _check_lag(self, now: float) -> bool:
        """Close the client if it is too far behind; True when it was closed."""
        outbox = self.outbox
        if outbox.lagging_since is None or self.closing:
            return self.closing
        if len(outbox) > self.limits.max_pending:
            reason = f"too slow: more than {self.limits.max_pending} messages waiting"
        elif now - outbox.lagging_since > self.limits.max_lag:
            reason = f"too slow: behind for more than {self.limits.max_lag:g}s"
        else:
            return False
        self.close(CloseCode.SLOW_CONSUMER, reason)
        return True

    async def _write_pending(self) -> None:
        try:
            while self.outbox.pending and not self.closing:
                await self.link.writable()
                if self.closing or not self.link.open:
                    break
                self.link.offer(self.outbox.take(), limit=sys.maxsize)
        except OSError:
            pass  # the connection is lost; the session's reader sees it and finishes
        finally:
            self._writer = None

    # -- closing -------------------------------------------------------------------------------

    def close(self, code: int, reason: str) -> None:
        """Stop writing to the client and close its connection (in the background).

        The hub forgets the client on the next turn of the loop, not now: this may run in the
        middle of a fan-out over the client's channels.
        """
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        self.outbox.clear()
        self.hub.closed[code] += 1
        log.info("closing a client: %d %s", code, reason)
        loop = asyncio.get_running_loop()
        loop.call_soon(self.hub.detach, self)
        self._closer = loop.create_task(self.link.close(code, reason))

    async def finish(self) -> None:
        """The connection ended (or is closing): forget the client, stop its writer, and let
        a close begun by :meth:`close` complete (it is bounded by the close timeout)."""
        self.closing = True
        self.outbox.clear()
        self.hub.detach(self)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._closer is not None:
            with contextlib.suppress(Exception):
                await self._closer

    # -- requests ------------------------------------------------------------------------------

    async def handle(self, frame: str | bytes) -> None:
        """Answer one frame from the client; bad requests get an error, nothing raises."""
        try:
            request = self.protocol.receive(frame, time.monotonic())
            if isinstance(request, Ping):
                self.reply(pong(request.id))
            elif isinstance(request, Unsubscribe):
                self._unsubscribe(request)
            elif isinstance(request, Subscribe):
                await self._subscribe(request)
            else:
                await self._resume(request)
        except RequestError as exc:
            self.reply(exc.payload())
            if self.protocol.abusive:
                self.close(CloseCode.RATE_LIMITED, "too many requests")

    async def _channel(self, request: Subscribe | Resume) -> CandleChannel | TickChannel:
        key = request.channel
        if not await self.directory.known(key.instrument):
            raise RequestError(
                ErrorCode.UNKNOWN_INSTRUMENT,
                f"no instrument {key.instrument} here",
                "instrument",
                request.id,
            )
        channel = self.hub.channel(key)
        assert channel is not None  # the protocol checked the interval
        return channel

    def _unsubscribe(self, request: Unsubscribe) -> None:
        channel = self.hub.channels.get(request.channel)
        if channel is not None:
            self.hub.unsubscribe(self, channel)
        self.protocol.removed(request.channel)
        instrument = request.channel.instrument
        if all(key.instrument != instrument for key in self.protocol.subscriptions):
            self.told.forget(instrument)
        self.reply(unsubscribed(request.id, request.channel))

    def _join(self, request: Subscribe | Resume, channel: CandleChannel | TickChannel) -> None:
        """Subscribe and say so; whatever is queued next reaches the client before updates."""
        self.hub.subscribe(self, channel)
        self.protocol.added(channel.key)
        self.reply(subscribed(request.id, channel.key, self.hub.epoch))

    async def _subscribe(self, request: Subscribe) -> None:
        channel = await self._channel(request)
        await self._snapshot(request, channel, reset=False)

    async def _snapshot(
        self,
        request: Subscribe | Resume,
        channel: CandleChannel | TickChannel,
        reset: bool,
        seen: int | None = None,
    ) -> None:
        """Join the channel with a snapshot, then the gap notices that concern it: those that
        came after its seq (or after ``seen``, the seq a resuming client last saw) or reach
        into its items."""
        count = self.protocol.snapshot_size(request)
        if isinstance(channel, TickChannel):
            if request.snapshot is None:
                count = 0  # ticks: only the current seq unless the client asks for more
            snapshot = channel.snapshot(count, reset)
        else:
            older = await self._older(channel, count)
            # From here to the end nothing awaits: the snapshot is current to channel.seq and
            # the updates after it are queued behind it.
            snapshot = channel.snapshot(count, reset, older)
        self._join(request, channel)
        self.reply(snapshot.payload)
        after = snapshot.seq if seen is None else min(seen, snapshot.seq)
        self._tell_gaps(channel.key, after, snapshot.start_ns)

    def _tell_gaps(self, key: ChannelKey, after: int, since_ns: int | None = None) -> None:
        for notice in self.hub.gaps.of(key.instrument):
            if notice.concerns(key, after, since_ns):
                self.notify(notice)

    def _replay(self, key: ChannelKey, seq: int, missed: list[Delivery]) -> None:
        """Send the deliveries after ``seq`` with the gap notices in their places (a notice
        at position p follows message p), as a client that never left had them."""
        items: list[Item] = []
        k = 0
        for notice in self.hub.gaps.of(key.instrument):  # positions rise with arrival
            position = notice.position(key)
            if position < seq:
                continue
            while k < len(missed) and missed[k].seq <= position:
                items.append(missed[k])
                k += 1
            if not self.closing and self.told.first_time(notice):
                items.append(notice.frame)
        items.extend(missed[k:])
        self._send_items(items)

    async def _older(self, channel: CandleChannel, count: int) -> list[Candle]:
        """Candles from storage for the part of the newest ``count`` the cache may not hold.

        The cache is complete from :attr:`CandleChannel.complete_from` on (when it has seen
        nothing, from the current interval on); storage gives the newest candles before that,
        however old (a gateway started on a database that holds history, an instrument
        without a tick since). If the cache moved past the range while storage answered (it
        evicted candles meanwhile), ask again.
        """
        if self.store is None or count == 0:
            return []
        interval = channel.interval
        older: list[Candle] = []
        for _ in range(STORE_RETRIES):
            end = channel.complete_from
            if end is None:
                end = interval.bucket_start(self.clock()) + interval.ns
            need = count - channel.cached_since(end)
            if need <= 0:
                return []
            try:
                older = await self.store.last_candles(channel.key.instrument, interval, end, need)
            except Exception:
                log.warning("storage failed; snapshot from memory only", exc_info=True)
                return []
            moved = channel.complete_from
            if moved is None or moved <= end:
                break
        return older

    async def _resume(self, request: Resume) -> None:
        channel = await self._channel(request)
        seq = request.seq
        foreign = request.epoch is not None and request.epoch != self.hub.epoch
        if foreign or seq > channel.seq:
            await self._snapshot(request, channel, reset=True)
            return
        missed = channel.missed(seq)
        if missed is not None:
            self._join(request, channel)
            self._replay(channel.key, seq, missed)
            return
        if request.channel.kind == TICKS or not isinstance(channel, CandleChannel):
            await self._snapshot(request, channel, reset=True, seen=seq)
            return
        if not await self._catch_up(request, channel):
            await self._snapshot(request, channel, reset=True, seen=seq)

    async def _catch_up(self, request: Resume, channel: CandleChannel) -> bool:
        """Bring the client to the present with the latest version of every candle changed
        since its seq (exact, without a reset); False when that is not possible."""
        seq = request.seq
        for _ in range(STORE_RETRIES):
            evicted = channel.evicted_since(seq)
            if evicted is None:
                return False
            stored: list[Candle] = []
            if evicted:
                if self.store is None:
                    return False
                first = min(entry.open_time for entry in evicted)
                last = max(entry.open_time for entry in evicted)
                try:
                    stored = await self.store.candles(
                        channel.key.instrument, channel.interval, first, last + 1
                    )
                except Exception:
                    log.warning("storage failed; resume falls back to a reset", exc_info=True)
                    return False
            if channel.evicted_since(seq) == evicted:
                break
        else:
            return False
        try:
            catch_up = channel.catch_up(seq, evicted, stored)
        except LookupError:
            return False
        if len(catch_up.updates) > self.hub.settings.max_catch_up:
            return False
        self._join(request, channel)
        if catch_up.dropped:
            self.reply(conflated(channel.key, catch_up.dropped))
        frames, framing = channel.frames, self.hub.framing
        self._send_items([framing(frames.update(seq, body)) for seq, body in catch_up.updates])
        self._tell_gaps(channel.key, request.seq)
        return True
