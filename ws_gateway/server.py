"""The gateway: the asyncio shell around the hub, on the ``websockets`` server.

:class:`Gateway` subscribes to ``md.candles`` and ``md.ticks`` with a consumer group of its
own (``gateway-<random>``, from the latest records), so that any number of gateways can run
side by side, each seeing every update; it feeds what it polls to the hub (candles, tick
batches and feed gaps) and flushes after each round. It listens for WebSocket clients, checks
their tokens during the handshake, heartbeats every client and closes those whose token
expired; it refuses browsers from origins not allowed and clients whose address holds its
cap of connections. ``docs/protocol.md`` has the protocol; ``docs/benchmarks.md`` why
``websockets`` and not Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import ClassVar, Self
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from core.candles import Candle
from core.gaps import FeedGap
from core.ticks import TickBatch
from core.topics import CANDLES, TICKS
from storage.repository import MarketDataStore
from streams.bus import Bus, BusClosedError, Subscription
from streams.processor import Batch, Outcome, Processor
from ws_gateway.admission import AddressSlots, origin_matchers
from ws_gateway.auth import (
    AuthenticationError,
    Authenticator,
    Principal,
    StaticTokens,
    bearer_token,
)
from ws_gateway.framing import text_frame
from ws_gateway.hub import Hub
from ws_gateway.protocol import ConnectionProtocol
from ws_gateway.session import Session
from ws_gateway.session_core import Directory
from ws_gateway.settings import GatewaySettings
from ws_gateway.wire import CloseCode, heartbeat

log = logging.getLogger(__name__)

POLL_RECORDS = 500
POLL_TIMEOUT = 0.25
FLUSH_EVERY = 20_000
"""Deliveries after which a round is flushed even in the middle of a poll (bounds latency)."""
HEALTH_PATH = "/healthz"


class WebsocketsLink:
    """A session's :class:`~ws_gateway.session.Link` over a ``websockets`` connection.

    Frames built by the hub go straight to the transport (the connection's own frames, pings
    and the close, go the same way, whole frames at a time, so they never interleave).
    """

    __slots__ = ("connection", "transport")

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.transport = connection.transport

    @property
    def open(self) -> bool:
        return self.connection.protocol.state is State.OPEN

    def offer(self, data: bytes, limit: int) -> bool:
        transport = self.transport
        if transport.get_write_buffer_size() > limit:
            return False
        if self.connection.protocol.state is State.OPEN:
            transport.write(data)
        return True

    async def writable(self) -> None:
        await self.connection.drain()

    async def close(self, code: int, reason: str) -> None:
        await self.connection.close(code, reason)


class AdmittedConnection(ServerConnection):
    """A connection that holds a slot of its client's address from the moment the TCP
    connection is made until it is lost, its handshake included (a client that is slow to
    send its HTTP request holds one too). Beyond the cap it is :attr:`crowded`: it holds
    none, and its handshake is refused with 429. :func:`admitted_connections` sets
    :attr:`slots`."""

    slots: ClassVar[AddressSlots] = AddressSlots(0)
    address = ""
    crowded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.address = _address(transport.get_extra_info("peername"))
        self.crowded = not self.slots.take(self.address)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            if not self.crowded:
                self.slots.give_back(self.address)


def admitted_connections(slots: AddressSlots) -> type[AdmittedConnection]:
    """The connection class for ``serve``'s ``create_connection``, counting in ``slots``."""
    return type("AdmittedConnection", (AdmittedConnection,), {"slots": slots})


@dataclass(slots=True)
class GatewayStats:
    """Running totals, for the status line and the tests."""

    records: int = 0
    candles: int = 0
    tick_batches: int = 0
    gaps: int = 0
    undecodable: int = 0
    connections: int = 0
    refused: int = 0
    crowded: int = 0
    """Handshakes refused because their address held its cap of connections."""


class Gateway:
    """The WebSocket gateway; run it with :meth:`run` (until :meth:`stop`) or ``async with``.

    ``store`` (optional) deepens snapshots and catch-ups beyond what the gateway holds in
    memory; ``authenticator`` checks tokens (default: anonymous reads, as ``settings`` say).
    """

    def __init__(
        self,
        bus: Bus,
        store: MarketDataStore | None = None,
        settings: GatewaySettings | None = None,
        authenticator: Authenticator | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.bus = bus
        self.store = store
        self.settings = settings = settings or GatewaySettings()
        if authenticator is None:
            anonymous = Principal("anonymous", settings.anonymous_permissions)
            authenticator = StaticTokens(anonymous=anonymous if settings.allow_anonymous else None)
        self.authenticator = authenticator
        self.clock = clock
        self.epoch = uuid.uuid4().hex[:16]
        self.group = f"{settings.group_prefix}-{uuid.uuid4().hex[:12]}"
        self.hub = Hub(settings, self.epoch, text_frame)
        self.directory = Directory(self.hub, storage=store is not None)
        self.stats = GatewayStats()
        self.sessions: dict[ServerConnection, Session] = {}
        self.started = asyncio.Event()
        """Set once the gateway listens and reads the bus (:attr:`port` is known then)."""
        self._stopping = asyncio.Event()
        self._server: Server | None = None
        self._principals: weakref.WeakKeyDictionary[ServerConnection, Principal] = (
            weakref.WeakKeyDictionary()
        )
        self._task: asyncio.Task[None] | None = None
        self._slots = AddressSlots(settings.max_connections_per_address)

    @property
    def port(self) -> int:
        """The port listened on (the free one picked when ``settings.port`` is 0)."""
        if self._server is None:
            raise RuntimeError("the gateway is not listening yet: await started first")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def clients(self) -> int:
        """Clients connected now."""
        return len(self.sessions)

    def connections_from(self, address: str) -> int:
        """TCP connections from ``address`` that hold a slot of its cap now (handshakes in
        progress included)."""
        return self._slots.held(address)

    @property
    def url(self) -> str:
        return f"ws://{self.settings.host}:{self.port}/ws"

    def stop(self) -> None:
        """Close every connection (1001) and return from :meth:`run`.

        Stop the gateway before closing its bus; should the bus close first, :meth:`run`
        returns by itself (the clients are closed with 1001 then too).
        """
        self._stopping.set()

    async def run(self) -> None:
        """Read the bus and serve clients until :meth:`stop`; a failure of either raises."""
        settings = self.settings
        limits = settings.limits
        subscription = self.bus.subscribe(self.group, [CANDLES, TICKS], start="latest")
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(subscription)
            self._server = await serve(
                self._serve_client,
                settings.host,
                settings.port,
                process_request=self._handshake,
                create_connection=admitted_connections(self._slots),
                origins=origin_matchers(settings.allowed_origins),
                open_timeout=settings.open_timeout,
                compression=None,
                max_size=limits.max_transport_frame_bytes,
                write_limit=(limits.client_buffer_bytes, limits.client_buffer_bytes // 4),
                ping_interval=settings.ping_interval,
                ping_timeout=settings.ping_timeout,
                close_timeout=settings.close_timeout,
                backlog=settings.backlog,
            )
            stack.push_async_callback(self._close_server)
            tasks = [
                asyncio.create_task(self._consume(subscription), name="gateway-consume"),
                asyncio.create_task(self._heartbeats(), name="gateway-heartbeat"),
            ]
            stack.push_async_callback(_cancel, tasks)
            log.info("gateway listening on %s:%d", settings.host, self.port)
            self.started.set()
            stopping = asyncio.create_task(self._stopping.wait())
            try:
                done, _ = await asyncio.wait(
                    [stopping, *tasks], return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stopping.cancel()
            for task in done:
                if task is not stopping:
                    task.result()  # a failing loop ends the gateway with its error

    async def _close_server(self) -> None:
        server = self._server
        if server is not None:
            server.close(code=1001, reason="gateway stopping")
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.run(), name="gateway")
        started = asyncio.create_task(self.started.wait())
        await asyncio.wait([started, self._task], return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            started.cancel()
            self._task.result()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if self._task is not None:
            await self._task

    # -- the bus -------------------------------------------------------------------------------

    async def _consume(self, subscription: Subscription) -> None:
        """The feed: the processor loop (:mod:`streams.processor`) with :meth:`_apply` as
        its step; the hub's fan-out is its only effect, so every round is committed."""
        feed = Processor(
            self.bus, self.group, [CANDLES, TICKS], self._apply,
            max_records=POLL_RECORDS, poll_timeout=POLL_TIMEOUT, clock=self.clock,
        )  # fmt: skip
        try:
            await feed.consume(subscription)
        except BusClosedError:
            log.info("the bus closed: the gateway stops")

    def _apply(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
        """Hand a decoded batch to the hub (flushing every :data:`FLUSH_EVERY` deliveries
        within it) and flush."""
        if not batch.records:
            return Outcome([], None)
        hub, stats = self.hub, self.stats
        stats.records += len(batch.records)
        stats.undecodable += len(batch.undecodable)
        mark = hub.delivered
        for message in batch.messages:
            if isinstance(message, Candle):
                hub.candle(message)
                stats.candles += 1
            elif isinstance(message, TickBatch):
                hub.ticks(message)
                stats.tick_batches += 1
            elif isinstance(message, FeedGap):
                hub.gap(message)
                stats.gaps += 1
            if hub.delivered - mark >= FLUSH_EVERY:
                hub.flush()
                mark = hub.delivered
        hub.flush()
        return Outcome([], None)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat)
            now = self.clock()
            self.hub.heartbeat(heartbeat(now // 1_000_000))
            for session in list(self.sessions.values()):
                if session.protocol.principal.expired(now):
                    session.close(CloseCode.UNAUTHORIZED, "token expired")

    # -- clients -------------------------------------------------------------------------------

    async def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """Check the client's address and token before the WebSocket opens (its ``Origin``
        is the server's to check, after this): refusals are plain HTTP answers."""
        url = urlsplit(request.path)
        if url.path == HEALTH_PATH:
            return connection.respond(HTTPStatus.OK, "ok\n")
        if isinstance(connection, AdmittedConnection) and connection.crowded:
            self.stats.crowded += 1
            return connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"too many connections from {connection.address}:"
                f" at most {self._slots.limit} at once\n",
            )
        query = parse_qs(url.query)
        try:
            token = bearer_token(
                query.get("token", [None])[0], request.headers.get("Authorization")
            )
            principal = await self.authenticator.authenticate(token)
        except AuthenticationError as exc:
            self.stats.refused += 1
            return connection.respond(exc.status, f"{exc}\n")
        self._principals[connection] = principal
        return None

    async def _serve_client(self, connection: ServerConnection) -> None:
        principal = self._principals.pop(connection)
        send_buffer = self.settings.limits.socket_send_buffer
        sock = connection.transport.get_extra_info("socket")
        if send_buffer is not None and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        protocol = ConnectionProtocol(self.settings, principal, time.monotonic())
        session = Session(
            self.hub,
            WebsocketsLink(connection),
            protocol,
            self.directory,
            self.store,
            self.clock,
        )
        self.stats.connections += 1
        self.sessions[connection] = session
        self.hub.attach(session)
        try:
            async for frame in connection:
                await session.handle(frame)
                if session.closing:
                    break
        except ConnectionClosed:
            pass
        finally:
            del self.sessions[connection]
            await session.finish()


def _address(peer: object) -> str:
    """The address part of a socket's peer name (the whole name when it is no tuple)."""
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
