"""One client connection, the asyncio shell around its :class:`SessionCore`.

A :class:`Session` joins the connection's :class:`~ws_gateway.session_core.SessionCore` (the
rules of subscribe, snapshot, resume, catch-up and reset, sans I/O), the
:class:`~ws_gateway.hub.Hub` (channels and fan-out), a :class:`Link` (the socket: write now
unless it is backed up, wait until it drains, close) and the store. It feeds the core each
frame the client sent and carries out the actions it hands back: it sends, closes, and reads
storage for snapshots and catch-ups (never in the fan-out), handing the core each result.

It is also the hub's :class:`~ws_gateway.channels.Client`: each round of updates is written at
once, in one write; while the socket is backed up, updates wait in its
:class:`~ws_gateway.outbox.Outbox` (conflating) and a writer task drains them; a client too far
behind is closed with 4008. Feed-gap notices are sent once per connection (the core's
:class:`~ws_gateway.gaps.Told`): live, replayed in their place on ``resume``, and after a
snapshot they reach into.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from core.alert_reads import AlertReads
from core.trading_reads import TradingReads
from storage.repository import MarketDataStore
from ws_gateway.auth import AuthenticationError, Principal
from ws_gateway.channels import Delivery, Part
from ws_gateway.gaps import GapNotice
from ws_gateway.hub import Hub
from ws_gateway.outbox import Item, Outbox
from ws_gateway.protocol import ConnectionProtocol
from ws_gateway.session_core import (
    Action,
    Answer,
    Authenticate,
    AwaitFeed,
    Close,
    Directory,
    Read,
    ReadAlerts,
    ReadCandles,
    ReadLastCandles,
    ReadPrivate,
    Send,
    SessionCore,
    Wait,
)
from ws_gateway.wire import CloseCode

log = logging.getLogger(__name__)

FEED_POLL = 0.01
"""Seconds between looks at an account's feed while a subscribe waits for it."""


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


TokenCheck = Callable[[str], Awaitable[Principal]]
"""Checks a token (raises :class:`~ws_gateway.auth.AuthenticationError` to refuse it)."""


async def _no_tokens(token: str) -> Principal:
    raise AuthenticationError("this gateway checks no tokens")


class Session:
    """One connected client (see the module's doc); ``core`` is made by the caller when it
    needs more than the defaults (``token_sent``, ``slots``: :class:`SessionCore`)."""

    def __init__(
        self,
        hub: Hub,
        link: Link,
        protocol: ConnectionProtocol,
        directory: Directory,
        store: MarketDataStore | None = None,
        clock: Callable[[], int] = time.time_ns,
        authenticate: TokenCheck = _no_tokens,
        reads: TradingReads | None = None,
        alert_reads: AlertReads | None = None,
        **core: Any,
    ) -> None:
        self.hub = hub
        self.reads = reads
        self.alert_reads = alert_reads
        self.link = link
        self.protocol = protocol
        self.store = store
        self.authenticate = authenticate
        self.core = SessionCore(
            hub,
            self,
            protocol,
            directory,
            storage=store is not None,
            clock=clock,
            private=reads is not None,
            alerts=alert_reads is not None,
            **core,
        )
        self.limits = protocol.limits
        self._limit = self.limits.client_buffer_bytes
        self.outbox = Outbox(hub.framing)
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
        if self.closing or not self.core.told.first_time(notice):
            return
        self.active = True
        self.send_frame(notice.frame)

    def quiet(self) -> bool:
        active, self.active = self.active, False
        return not active

    def _send_items(self, items: list[Item]) -> None:
        """Send deliveries and frames of this client's own, in order (replies, a snapshot, a
        replay, a catch-up)."""
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
        self.core.finish()
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
        """Answer one frame from the client: carry out the core's actions, performing its
        storage reads one at a time; bad requests get an error, nothing raises."""
        await self.carry_out(self.core.receive(frame, time.monotonic()))

    async def carry_out(self, actions: list[Action]) -> None:
        """Carry out the core's actions, performing its reads and token checks in turn."""
        while True:
            wait = self.perform(actions)
            if wait is None:
                return
            if isinstance(wait, Authenticate):
                actions = await self._authenticate(wait)
            elif isinstance(wait, ReadPrivate):
                actions = await self._read_private(wait)
            elif isinstance(wait, AwaitFeed):
                actions = self.core.answer(await self._await_feed(wait))
            else:
                actions = await self._read(wait)

    async def _authenticate(self, wait: Authenticate) -> list[Action]:
        try:
            principal = await self.authenticate(wait.token)
        except AuthenticationError as exc:
            return self.core.refused(exc)
        return self.core.answer(principal)

    def perform(self, actions: list[Action]) -> Wait | None:
        """Send and close as told, without waiting; the read that ends the list, if any."""
        for action in actions:
            if isinstance(action, Send):
                if action.active and not self.closing:
                    self.active = True
                self._send_items(action.items)
            elif isinstance(action, Close):
                self.close(action.code, action.reason)
            else:
                return action
        return None

    async def _read_private(self, read: ReadPrivate) -> list[Action]:
        """Read an account's snapshot for the core (bounded by ``private_wait``): of the
        trading read models, or of its fired alerts; a failure (the database unreachable) is
        handed to the core, which answers ``unavailable``: the session stays up."""
        if read.pause:
            await asyncio.sleep(read.pause)
        wait = self.hub.settings.private_wait
        result: Answer
        try:
            if isinstance(read, ReadAlerts):
                assert self.alert_reads is not None  # the core reads only when there are reads
                result = await asyncio.wait_for(
                    self.alert_reads.alerts_snapshot(read.account, read.limit), wait
                )
            else:
                assert self.reads is not None
                result = await asyncio.wait_for(
                    self.reads.account_snapshot(read.account, read.limit), wait
                )
        except Exception as exc:
            return self.core.failed(exc)
        return self.core.answer(result)

    async def _await_feed(self, wait: AwaitFeed) -> bool:
        """Poll until the account's feed applied what ``wait.snapshot`` holds (or
        ``wait.timeout``)."""
        deadline = time.monotonic() + wait.timeout
        feeds = self.hub.feeds(wait.kind)
        while True:
            feed = feeds.get(wait.account)
            if feed is None or feed.epoch != wait.epoch:
                return False
            if feed.ready(wait.snapshot):
                return True
            if time.monotonic() >= deadline or self.closing:
                return False
            await asyncio.sleep(FEED_POLL)

    async def _read(self, read: Read) -> list[Action]:
        """Perform one storage read for the core and hand it the result (or the failure)."""
        store = self.store
        assert store is not None  # the core reads only when told there is a store
        result: Answer
        try:
            if isinstance(read, ReadLastCandles):
                result = await store.last_candles(
                    read.instrument, read.interval, read.before, read.count
                )
            elif isinstance(read, ReadCandles):
                result = await store.candles(read.instrument, read.interval, read.start, read.end)
            else:
                result = await store.instruments()
        except Exception as exc:
            return self.core.failed(exc)
        return self.core.answer(result)
