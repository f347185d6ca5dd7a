"""The live venue feed: a thin asyncio shell around :class:`~ingest.venues.session.FeedSession`.

It owns the socket and the clock and nothing else: it connects (``websockets``), sends the
protocol's subscribe frames, reads frames and hands them to the session, sends the replies,
and puts the session's events on a bounded queue that :meth:`VenueFeed.events` yields from.

Liveness: WebSocket pings every ``ping_interval`` (no pong within ``ping_timeout`` closes the
connection) and, on venues that send heartbeats, a stale-feed timer (no frame at all for
:attr:`VenueFeed.stale_after`, by default the venue's own). A lost, refused or stale
connection, or an error the venue reports, is followed by a reconnect after a delay
drawn by :class:`~ingest.venues.backoff.Backoff`; the session turns the outage into feed
gaps. While the consumer is slow, the queue fills and the feed stops reading, so memory stays
bounded. :meth:`VenueFeed.stop` ends the feed cleanly: what was received goes out, then the
gaps still open, then the iterator ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidURI, WebSocketException
from websockets.uri import parse_uri

from ingest.venues.backoff import Backoff
from ingest.venues.base import VenueProtocol
from ingest.venues.events import VenueEvent, VenueReject
from ingest.venues.session import FeedCounters, FeedSession
from ingest.venues.settings import VenueSettings

__all__ = ["FeedCounters", "VenueEvent", "VenueFeed", "VenueReject", "VenueSettings"]

log = logging.getLogger(__name__)


class _ConnectionEndedError(Exception):
    """The connection is no good any more (stale, or the venue reported an error)."""


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


_END = object()


class VenueFeed:
    """Live trades of ``symbols`` from one venue, as tick batches, feed gaps and rejects.

    ``symbols`` are the venue's own (``BTC/USD`` on Kraken); a symbol the protocol refuses
    raises ``ValueError`` here, as does a malformed URL. ``resume`` maps instruments to their
    last trade stored before a restart, ``(trade id, ts_event)``: the feed starts as if the
    connection had dropped after it (repeats of stored trades dropped, the time in between
    a gap). ``clock`` (wall clock, UTC ns) and ``rng`` (the backoff's jitter) are there for
    tests.

    Iterate :meth:`events` once; call :meth:`stop` from the same event loop to end it.
    """

    def __init__(
        self,
        protocol: VenueProtocol,
        symbols: Sequence[str],
        settings: VenueSettings | None = None,
        *,
        resume: Mapping[str, tuple[int, int]] | None = None,
        clock: Callable[[], int] = time.time_ns,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings if settings is not None else VenueSettings()
        self.protocol = protocol
        self.session = FeedSession(protocol, symbols, self.settings, resume=resume)
        self.url = protocol.connect_url(self.settings.url or protocol.default_url, symbols)
        try:
            parse_uri(self.url)
        except InvalidURI as exc:
            raise ValueError(f"url: {exc}") from exc
        self._subscribe = protocol.subscribe(symbols)
        self.stale_after = self.settings.stale_timeout(protocol.stale_after)
        """Seconds without a frame after which the connection counts as dead (``None``: never,
        only the WebSocket pings decide): the setting, else the venue's default."""
        self._clock = clock
        self._backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max, rng)
        self._queue: asyncio.Queue[object] = asyncio.Queue(self.settings.queue_bound)
        self._outbox: deque[VenueEvent] = deque()
        self._loop_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = False

    @property
    def counters(self) -> FeedCounters:
        return self.session.counters

    def stop(self) -> None:
        """End the feed: :meth:`events` yields what is left, then finishes. Idempotent."""
        self._stopping = True
        if self._loop_task is not None and not self._loop_task.done():
            self._loop_task.cancel()

    async def events(self) -> AsyncIterator[VenueEvent]:
        """Tick batches, feed gaps and rejects, as they come, until :meth:`stop`."""
        if self._started:
            raise RuntimeError("VenueFeed.events() can be iterated only once")
        self._started = True
        runner = asyncio.create_task(self._run(), name=f"venue-feed-{self.protocol.name}")
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    break
                if isinstance(item, _Failed):
                    raise item.error
                yield cast(VenueEvent, item)
        finally:
            if not runner.done():
                runner.cancel()
                with suppress(asyncio.CancelledError):
                    await runner

    # -- the task behind events() ----------------------------------------------------------

    async def _run(self) -> None:
        if not self._stopping:
            self._loop_task = asyncio.create_task(self._connect_loop())
            try:
                await self._loop_task
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not self._stopping or (task is not None and task.cancelling()):
                    raise
            except Exception as exc:
                log.exception("%s: the feed failed", self.protocol.name)
                await self._queue.put(_Failed(exc))
                return
        self._outbox.extend(self.session.finish(self._clock()))
        await self._drain()
        await self._queue.put(_END)

    async def _connect_loop(self) -> None:
        while True:
            opened: int | None = None
            reason = "connection failed"
            try:
                async with connect(
                    self.url,
                    ping_interval=self.settings.ping_interval,
                    ping_timeout=self.settings.ping_timeout,
                    open_timeout=self.settings.open_timeout,
                    close_timeout=self.settings.close_timeout,
                    max_size=self.settings.max_frame_bytes,
                    proxy=self.settings.proxy,
                ) as ws:
                    opened = self._clock()
                    self.session.connected(opened)
                    log.info("%s: connected to %s", self.protocol.name, self.url)
                    for frame in self._subscribe:
                        await ws.send(frame)
                    await self._pump(ws)
            except (OSError, TimeoutError, WebSocketException, _ConnectionEndedError) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.warning("%s: %s", self.protocol.name, reason)
            now = self._clock()
            self.counters.last_error = reason
            if self.counters.connects:  # before the first connection nothing could be missed
                self._outbox.extend(self.session.disconnected(now, reason))
            if opened is not None and now - opened >= VenueSettings.ns(self.settings.healthy_after):
                self._backoff.reset()
            await self._drain()
            delay = self._backoff.next_delay()
            self.counters.reconnects += 1
            log.info("%s: reconnecting in %.2f s", self.protocol.name, delay)
            await asyncio.sleep(delay)

    async def _pump(self, ws: ClientConnection) -> None:
        """Read frames until the connection ends (raises) or the feed is stopped (cancelled)."""
        stale_ns = None if self.stale_after is None else VenueSettings.ns(self.stale_after)
        stale_at = None if stale_ns is None else self._clock() + stale_ns
        while True:
            before = self._clock()
            await self._drain()
            now = self._clock()
            if stale_at is not None:
                stale_at += now - before  # time spent waiting for the consumer is not silence
            deadlines = (stale_at, self.session.next_deadline())
            deadline = min((d for d in deadlines if d is not None), default=None)
            timeout = None if deadline is None else max(0, deadline - now) / 1e9
            try:
                async with asyncio.timeout(timeout):
                    frame = await ws.recv()
            except TimeoutError:
                now = self._clock()
                if stale_at is not None and now >= stale_at:
                    raise _ConnectionEndedError(
                        f"no frame for {self.stale_after:g} s (stale feed)"
                    ) from None
                self._outbox.extend(self.session.on_timer(now))
                continue
            now = self._clock()
            if stale_ns is not None:
                stale_at = now + stale_ns
            result = self.session.on_frame(frame, now)
            self._outbox.extend(result.events)
            for reply in result.replies:
                await ws.send(reply)
            if result.error is not None:
                raise _ConnectionEndedError(f"the venue reported an error: {result.error}")

    async def _drain(self) -> None:
        """Move the outbox to the queue; an event leaves the outbox only once queued, so a
        stop in the middle loses nothing."""
        while self._outbox:
            await self._queue.put(self._outbox[0])
            self._outbox.popleft()
