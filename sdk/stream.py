"""``MarketStream``: live candles and ticks from the gateway, and the account's own orders,
fills, positions and fired alerts, resumed across reconnects.

The asyncio shell around :class:`sdk.protocol.StreamCore`: one task owns the connection (it
connects, sends the core's frames, feeds it what arrives and reconnects after a drop, with
:class:`~sdk.protocol.Backoff`), another renews the token. The bot reads messages with
``async for`` from a bounded queue (``docs/sdk.md``, "Slow consumers").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType
from typing import Final, Self

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from sdk.credentials import AccessToken, TokenSource
from sdk.errors import (
    FRAME_TOO_LARGE,
    REVOKED,
    STREAM_CLOSED,
    TOO_MANY_CONNECTIONS,
    UNAUTHORIZED,
    SdkError,
)
from sdk.protocol import Backoff, Output, StreamCore
from sdk.wire import (
    ALERTS,
    CANDLES,
    FILLS,
    ORDERS,
    POSITIONS,
    TICKS,
    Channel,
    Message,
    PrivateKind,
)

log = logging.getLogger(__name__)

FATAL_CLOSES: Final = {
    4401: UNAUTHORIZED,
    4403: REVOKED,
    4429: TOO_MANY_CONNECTIONS,
    1009: FRAME_TOO_LARGE,
}
"""Close codes after which reconnecting would be refused again: the stream ends."""
FATAL_STATUSES: Final = {401: UNAUTHORIZED, 403: UNAUTHORIZED}
"""Handshake refusals that end the stream (others, like 429 or 503, are retried)."""
MIN_RENEWAL_S: Final = 1.0
"""The shortest wait between two renewals, whatever the token source says."""
TRANSIENT_AUTH: Final = {"auth_unavailable", "database-unavailable", "too-many-attempts"}
"""Credential failures worth retrying with the backoff."""


class MarketStream:
    """Live market data over one WebSocket, reconnected and resumed as needed.

    ``url`` is the gateway's (``ws://127.0.0.1:8000/ws`` behind the edge);
    ``credentials`` a :class:`~sdk.credentials.Credentials` (or any token source), None for
    anonymous access. ``queue_size`` bounds the messages waiting for the bot; ``silence``
    is how long (seconds) a connection may stay silent before it is taken for dead (the
    gateway sends a heartbeat at least every 10 s); ``max_frame_bytes`` bounds one frame.
    """

    def __init__(
        self,
        url: str,
        credentials: TokenSource | None = None,
        *,
        queue_size: int = 10_000,
        backoff: Backoff | None = None,
        silence: float = 15.0,
        open_timeout: float = 10.0,
        max_frame_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.url = url
        self.core = StreamCore()
        self.connections = 0
        """Connections opened so far (a reconnect adds one)."""
        self._credentials = credentials
        self._queue: asyncio.Queue[Message] = asyncio.Queue(queue_size)
        self._backoff = backoff or Backoff()
        self._silence = silence
        self._open_timeout = open_timeout
        self._max_frame = max_frame_bytes
        self._ws: ClientConnection | None = None
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._failure: SdkError | None = None
        self._ended = asyncio.Event()
        self._heard = False
        """The current connection has had a frame (the backoff starts over after it)."""

    # -- lifespan ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="market-stream")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection and end the stream (``async for`` stops)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._end(None)

    # -- subscriptions ----------------------------------------------------------------------

    async def subscribe_candles(
        self, instrument: str, interval: str, *, snapshot: int | None = None
    ) -> None:
        """Hold ``instrument``'s ``interval`` candles: returns once the gateway said
        ``subscribed`` (its snapshot follows in the stream); raises :class:`SdkError` with the
        gateway's code (``unknown_instrument``, ``bad_interval``, ``forbidden``...)."""
        await self._subscribe(Channel(CANDLES, instrument.upper(), interval), snapshot)

    async def subscribe_ticks(self, instrument: str, *, snapshot: int | None = None) -> None:
        """Hold ``instrument``'s trades (as :meth:`subscribe_candles`)."""
        await self._subscribe(Channel(TICKS, instrument.upper()), snapshot)

    async def unsubscribe(self, instrument: str, interval: str | None = None) -> None:
        """Drop a channel (candles with ``interval``, else ticks): nothing of it follows."""
        channel = Channel(TICKS, instrument.upper())
        if interval is not None:
            channel = Channel(CANDLES, instrument.upper(), interval)
        _rid, frames = self.core.unsubscribe(channel)
        await self._send(frames)

    async def subscribe_orders(self, *, snapshot: int | None = None) -> None:
        """Hold the account's order events (``OrderUpdate``), after a ``PrivateSnapshot`` of
        its newest ``snapshot`` orders. Needs credentials whose token may trade; a refusal
        raises :class:`SdkError` with the gateway's code."""
        await self._subscribe(Channel(ORDERS), snapshot)

    async def subscribe_fills(self, *, snapshot: int | None = None) -> None:
        """Hold the account's fills (``FillUpdate``), after a snapshot of the newest ones."""
        await self._subscribe(Channel(FILLS), snapshot)

    async def subscribe_positions(self) -> None:
        """Hold the account's positions (``PositionUpdate`` after each fill), after a
        snapshot of every position."""
        await self._subscribe(Channel(POSITIONS), None)

    async def subscribe_alerts(self, *, snapshot: int | None = None) -> None:
        """Hold the account's fired alerts (``AlertUpdate``, each firing once), after a
        ``PrivateSnapshot`` of its newest ``snapshot`` firings and its unread count. Needs
        credentials of an account (no trade scope needed)."""
        await self._subscribe(Channel(ALERTS), snapshot)

    async def unsubscribe_private(self, kind: PrivateKind) -> None:
        """Drop one of the account's channels (``orders``, ``fills``, ``positions``,
        ``alerts``)."""
        _rid, frames = self.core.unsubscribe(Channel(kind))
        await self._send(frames)

    async def _subscribe(self, channel: Channel, snapshot: int | None) -> None:
        self._check_open()
        rid, frames = self.core.subscribe(channel, snapshot)
        answered = asyncio.get_running_loop().create_future()
        self._waiting[rid] = answered
        try:
            await self._send(frames)
            await answered
        finally:
            self._waiting.pop(rid, None)

    # -- reading ----------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        if self._queue.empty() and not self._ended.is_set():
            getting = asyncio.ensure_future(self._queue.get())
            ended = asyncio.ensure_future(self._ended.wait())
            try:
                await asyncio.wait([getting, ended], return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
                if not getting.done():
                    getting.cancel()
            if getting.done() and not getting.cancelled():
                return getting.result()
        if not self._queue.empty():
            return self._queue.get_nowait()
        if self._failure is not None:
            raise self._failure
        raise StopAsyncIteration

    # -- the connection ---------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._ended.is_set():
            try:
                if await self._connection():
                    attempt = 0
            except SdkError as error:
                if error.code not in TRANSIENT_AUTH:
                    self._end(error)
                    return
                log.warning("market stream: %s", error)
            if self._ended.is_set():  # the renewal failed for good
                return
            delay = self._backoff.delay(attempt)
            attempt += 1
            log.info("market stream: reconnecting in %.2f s", delay)
            await asyncio.sleep(delay)

    async def _connection(self) -> bool:
        """Serve one connection until it drops; whether it ever got an answer (the backoff
        starts over then). Raises :class:`SdkError` for a refusal."""
        token = None if self._credentials is None else await self._credentials.access_token()
        self._heard = False
        try:
            async with connect(
                self.url,
                open_timeout=self._open_timeout,
                max_size=self._max_frame,
                compression=None,
                close_timeout=1.0,
            ) as ws:
                self.connections += 1
                await self._serve(ws, token)
        except ConnectionClosed as closed:
            told = closed.rcvd
            if told is not None and told.code in FATAL_CLOSES:
                raise SdkError(FATAL_CLOSES[told.code], told.reason or str(told.code)) from None
            log.info("market stream: connection closed (%s)", told and told.code)
        except InvalidStatus as refused:
            status = refused.response.status_code
            if status in FATAL_STATUSES:
                body = refused.response.body.decode(errors="replace")[:200]
                raise SdkError(FATAL_STATUSES[status], body or f"HTTP {status}") from None
            log.info("market stream: handshake refused with HTTP %d", status)
        except (OSError, TimeoutError, InvalidHandshake, msgspec.DecodeError) as exc:
            log.info("market stream: connection lost (%s)", type(exc).__name__)
        finally:
            self._ws = None
            self.core.disconnected()
        return self._heard

    async def _serve(self, ws: ClientConnection, token: AccessToken | None) -> None:
        """Feed the core what ``ws`` sends until it drops (which raises)."""
        self._ws = ws
        renewing = None
        if token is not None:
            renewing = asyncio.create_task(self._renew(ws, token.renew_at))
        try:
            await self._send(self.core.connected(None if token is None else token.value.reveal()))
            while True:
                frame = await asyncio.wait_for(ws.recv(), self._silence)
                self._heard = True
                await self._apply(self.core.receive(frame))
        finally:
            if renewing is not None:
                renewing.cancel()

    async def _renew(self, ws: ClientConnection, renew_at: float) -> None:
        """Send a newer token as an ``auth`` frame each time the last one is due."""
        assert self._credentials is not None
        while True:
            await asyncio.sleep(max(MIN_RENEWAL_S, renew_at - time.time()))
            try:
                token = await self._credentials.access_token()
            except SdkError as error:
                if error.code in TRANSIENT_AUTH:
                    await asyncio.sleep(1.0)
                    continue
                self._end(error)
                await ws.close()
                return
            await ws.send(self.core.renew(token.value.reveal()))
            renew_at = token.renew_at

    async def _apply(self, output: Output) -> None:
        await self._send(output.send)
        for answer in output.answered:
            waiting = self._waiting.get(answer.id)
            if waiting is not None and not waiting.done():
                if answer.error is None:
                    waiting.set_result(None)
                else:
                    error = answer.error
                    waiting.set_exception(SdkError(error.code, error.message, field=error.field))
        for message in output.messages:
            await self._queue.put(message)  # a full queue holds the reading: see docs/sdk.md

    async def _send(self, frames: list[str]) -> None:
        ws = self._ws
        if ws is None:
            return  # the core sends them on the next connection
        with contextlib.suppress(ConnectionClosed):
            for frame in frames:
                await ws.send(frame)

    def _check_open(self) -> None:
        if self._task is None or self._ended.is_set():
            raise self._failure or SdkError(STREAM_CLOSED, "the stream is not open")

    def _end(self, failure: SdkError | None) -> None:
        if self._ended.is_set():
            return
        self._failure = failure
        self._ended.set()
        error = failure or SdkError(STREAM_CLOSED, "the stream was closed")
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(error)
