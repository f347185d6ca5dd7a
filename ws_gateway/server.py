"""The gateway: the asyncio shell around the hub, on the ``websockets`` server.

:class:`Gateway` subscribes to ``md.candles`` and ``md.ticks`` with a consumer group of its
own (``gateway-<random>``, from the latest records), so that any number of gateways can run
side by side, each seeing every update; it feeds what it polls to the hub (candles, tick
batches and feed gaps) and flushes after each round. It listens for WebSocket clients, checks
their tokens during the handshake (or in the first frame), heartbeats every client and closes
those whose token expired; it refuses browsers from origins not allowed and clients whose
address holds its cap of connections. It reads ``auth.events`` too (from the earliest record,
so a gateway started late knows the revocations still in force) into a
:class:`~access.denylist.Denylist`: a revoked key, session or account has its connections
closed with 4403 within a round of that loop (a quarter of a second when idle), and an
entitlement change is applied to its account's connections at once. ``docs/protocol.md`` has
the protocol; ``docs/benchmarks.md`` why ``websockets`` and not Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from types import TracebackType
from typing import ClassVar, Final, Self
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHeader, NegotiationError
from websockets.headers import parse_subprotocol
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from access.denylist import Denylist
from core.alert_reads import AlertReads
from core.alerts import AlertFired
from core.auth_events import AuthEvent
from core.candles import Candle
from core.gaps import FeedGap
from core.ticks import TickBatch
from core.topics import ALERTS_EVENTS, AUTH_EVENTS, CANDLES, TICKS, TRADING_EVENTS
from core.trading_events import TradingRecord
from core.trading_reads import TradingReads
from storage.repository import MarketDataStore
from streams.bus import Bus, BusClosedError, Subscription
from streams.processor import Batch, Outcome, Processor
from web.health import ALIVE, ALIVE_PATH, JSON, NO_STORE, READY_PATH, readiness
from ws_gateway.admission import AddressSlots, PrincipalSlots, origin_matchers
from ws_gateway.auth import (
    AuthenticationError,
    Authenticator,
    Principal,
    StaticTokens,
    bearer_token,
)
from ws_gateway.framing import text_frame
from ws_gateway.gauges import count_close, watched
from ws_gateway.hub import Hub
from ws_gateway.protocol import ConnectionProtocol
from ws_gateway.session import Session
from ws_gateway.session_core import Directory
from ws_gateway.settings import GatewaySettings
from ws_gateway.wire import CloseCode, ErrorCode, RequestError, error, heartbeat, token_text

log = logging.getLogger(__name__)

POLL_RECORDS = 500
POLL_TIMEOUT = 0.25
FLUSH_EVERY = 20_000
"""Deliveries after which a round is flushed even in the middle of a poll (bounds latency)."""
GATEWAY_SPAN = "gateway.send"
"""The span of a traced round of the feed: its updates handed to the subscribers' queues."""
HEALTH_PATH: Final = ALIVE_PATH
READY_STALE_S: Final = 10.0
"""``/readyz`` fails once the feed loop has not finished a round for this long (a round ends
every :data:`POLL_TIMEOUT` at most when the bus answers, even with nothing to read)."""
SUBPROTOCOL: Final = Subprotocol("mdp.v1")
"""The protocol of ``docs/protocol.md``, selected when a client offers it."""
TOKEN_SUBPROTOCOL: Final = "mdp.token."
"""A subprotocol ``mdp.token.<token>`` beside ``mdp.v1`` carries the client's token."""
NOBODY: Final = Principal("unauthenticated")
"""The principal of a connection waiting for its ``auth`` frame: it may do nothing."""
NS_PER_S: Final = 1_000_000_000


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
    trading_records: int = 0
    """Records of ``trading.events`` read (private channels)."""
    alert_records: int = 0
    """Firings read on ``alerts.events`` (the ``alerts`` channel)."""
    connections: int = 0
    refused: int = 0
    """Tokens refused (at the handshake or in an ``auth`` frame)."""
    revoked: int = 0
    """Connections closed because ``auth.events`` revoked their key, session or account."""
    regranted: int = 0
    """Connections whose entitlements ``auth.events`` changed."""
    crowded: int = 0
    """Handshakes refused because their address held its cap of connections."""


class Gateway:
    """The WebSocket gateway; run it with :meth:`run` (until :meth:`stop`) or ``async with``.

    ``store`` (optional) deepens snapshots and catch-ups beyond what the gateway holds in
    memory; ``authenticator`` checks tokens (default: anonymous reads, as ``settings`` say);
    ``reads`` (optional) reads accounts' snapshots of the trading read models: with it the
    gateway reads ``trading.events`` and serves the private channels ``orders``, ``fills``
    and ``positions`` (without it they are ``unavailable``); ``alert_reads`` (optional) reads
    accounts' fired alerts: with it the gateway reads ``alerts.events`` and serves the private
    channel ``alerts`` (without it, it is ``unavailable``).
    """

    def __init__(
        self,
        bus: Bus,
        store: MarketDataStore | None = None,
        settings: GatewaySettings | None = None,
        authenticator: Authenticator | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
        reads: TradingReads | None = None,
        alert_reads: AlertReads | None = None,
    ) -> None:
        self.bus = bus
        self.store = store
        self.reads = reads
        self.alert_reads = alert_reads
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
        self._principals: weakref.WeakKeyDictionary[ServerConnection, _Admitted] = (
            weakref.WeakKeyDictionary()
        )
        self.denylist = Denylist()
        """The revocations read from ``auth.events`` (a token they name is refused)."""
        self._principal_slots = PrincipalSlots()
        self._task: asyncio.Task[None] | None = None
        self._slots = AddressSlots(settings.max_connections_per_address)
        self._last_round_ns: int | None = None

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
        scheme = "ws" if self.settings.tls is None else "wss"
        return f"{scheme}://{self.settings.host}:{self.port}/ws"

    def stop(self) -> None:
        """Close every connection (1001) and return from :meth:`run`.

        Stop the gateway before closing its bus; should the bus close first, :meth:`run`
        returns by itself (the clients are closed with 1001 then too).
        """
        self._stopping.set()

    async def run(self) -> None:
        """Read the bus and serve clients until :meth:`stop`; a failure of either raises.
        Meanwhile the gateway's gauges read its clients (:func:`~ws_gateway.gauges.watched`)."""
        with watched(self.hub, self.sessions):
            await self._run()

    async def _run(self) -> None:
        settings = self.settings
        limits = settings.limits
        subscription = self.bus.subscribe(self.group, [CANDLES, TICKS], start="latest")
        private = []  # subscribed before the server listens, as the feed is
        if self.reads is not None:
            private.append(("trading", TRADING_EVENTS))
        if self.alert_reads is not None:
            private.append(("alerts", ALERTS_EVENTS))
        follows = [
            (self.bus.subscribe(f"{self.group}-{name}", [topic], start="latest"), name)
            for name, topic in private
        ]
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(subscription)
            for follow in follows:
                await stack.enter_async_context(follow[0])
            self._server = await serve(
                self._serve_client,
                settings.host,
                settings.port,
                process_request=self._handshake,
                subprotocols=[SUBPROTOCOL],
                select_subprotocol=_select_subprotocol,
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
                ssl=None if settings.tls is None else settings.tls.server_context(),
            )
            stack.push_async_callback(self._close_server)
            tasks = [
                asyncio.create_task(self._consume(subscription), name="gateway-consume"),
                asyncio.create_task(self._follow_revocations(), name="gateway-auth-events"),
                asyncio.create_task(self._heartbeats(), name="gateway-heartbeat"),
            ]
            for follow in follows:
                following = self._follow_private(*follow)
                tasks.append(asyncio.create_task(following, name=f"gateway-{follow[1]}"))
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
        its step; the hub's fan-out is its only effect, done when a round returns, so every
        round is committed, in the background (``commit_behind``): the next poll does not
        wait for the broker's answer to a commit."""
        feed = Processor(
            self.bus, self.group, [CANDLES, TICKS], self._apply,
            max_records=POLL_RECORDS, poll_timeout=POLL_TIMEOUT, clock=self.clock,
            trace_name=GATEWAY_SPAN, commit_behind=True,
        )  # fmt: skip
        try:
            await feed.consume(subscription)
        except BusClosedError:
            log.info("the bus closed: the gateway stops")

    async def _follow_revocations(self) -> None:
        """``auth.events`` through the processor loop, from the earliest record (revocations
        still in force before this gateway started count too), with :meth:`_revoke` as its
        step."""
        events = Processor(
            self.bus, f"{self.group}-auth", [AUTH_EVENTS], self._revoke,
            start="earliest", poll_timeout=POLL_TIMEOUT, clock=self.clock,
        )  # fmt: skip
        try:
            await events.run()
        except BusClosedError:
            log.info("the bus closed: the gateway stops reading auth.events")

    async def _follow_private(self, subscription: Subscription, name: str) -> None:
        """The topic of private channels ``subscription`` reads (``trading.events``,
        ``alerts.events``) through the processor loop, from the latest record (a private
        channel starts from a snapshot), with :meth:`_private` as its step."""
        topics = subscription.topics
        records = Processor(
            self.bus, f"{self.group}-{name}", topics, self._private,
            start="latest", poll_timeout=POLL_TIMEOUT, clock=self.clock,
        )  # fmt: skip
        try:
            await records.consume(subscription)
        except BusClosedError:
            log.info("the bus closed: the gateway stops reading %s", ", ".join(topics))

    def _private(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
        """Hand the records (of ``trading.events``, ``alerts.events``) to the accounts'
        private channels and flush."""
        hub, stats = self.hub, self.stats
        stats.undecodable += len(batch.undecodable)
        for message in batch.messages:
            if isinstance(message, AlertFired):
                stats.alert_records += 1
                hub.alert(message)
            elif isinstance(message, TradingRecord):
                stats.trading_records += 1
                if hub.trading(message) is not None:
                    log.warning(
                        "account %d: trading.events skipped a version: its private channels"
                        " are dropped (clients subscribe again)",
                        message.event.account,
                    )
        hub.flush()
        return Outcome([], None)

    def _revoke(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
        """Take auth events into the denylist; close the connections they revoke (4403) and
        apply entitlement changes to their accounts' connections."""
        now = now_ns // NS_PER_S
        for message in batch.messages:
            if not isinstance(message, AuthEvent):
                continue
            self.denylist.apply(message, now)
            if message.kind == "entitlements-changed":
                self._regrant(message)
        if batch.records:
            for session in list(self.sessions.values()):
                grant = session.core.principal.grant
                if grant is not None and self.denylist.refuses(grant, now):
                    self.stats.revoked += 1
                    session.close(CloseCode.FORBIDDEN, "revoked")
        return Outcome([], None)

    def _regrant(self, event: AuthEvent) -> None:
        """Apply an account's new plan to its connections."""
        claims = event.claims
        if claims is None:
            return
        for session in list(self.sessions.values()):
            principal = session.core.principal
            grant = principal.grant
            if grant is None or grant.account_id != event.account_id or session.closing:
                continue
            regranted = replace(principal, grant=grant.with_plan(claims))
            self.stats.regranted += 1
            session.perform(session.core.regrant(regranted))

    def _apply(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
        """Hand a decoded batch to the hub (flushing every :data:`FLUSH_EVERY` deliveries
        within it) and flush."""
        hub, stats = self.hub, self.stats
        self._last_round_ns = now_ns
        hub.release(now_ns)
        if not batch.records:
            hub.flush()
            return Outcome([], None)
        stats.records += len(batch.records)
        stats.undecodable += len(batch.undecodable)
        mark = hub.delivered
        for message in batch.messages:
            if isinstance(message, Candle):
                hub.candle(message, now_ns)
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
            return _json_answer(connection, 200, ALIVE, NO_STORE)
        if url.path == READY_PATH:
            return _json_answer(connection, *readiness(self.readiness()))
        if isinstance(connection, AdmittedConnection) and connection.crowded:
            self.stats.crowded += 1
            return connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"too many connections from {connection.address}:"
                f" at most {self._slots.limit} at once\n",
            )
        query = parse_qs(url.query)
        try:
            offered = _token_subprotocol(request)
            token = bearer_token(
                query.get("token", [None])[0], request.headers.get("Authorization")
            )
            if token is not None:
                principal = await self.authenticate(token_text(token))
            elif offered is not None:
                self._principals[connection] = await self._subprotocol_principal(offered)
                return None
        except (AuthenticationError, RequestError) as exc:
            self.stats.refused += 1
            status = getattr(exc, "status", HTTPStatus.UNAUTHORIZED)
            return connection.respond(status, f"{exc}\n")
        if token is None:
            try:
                principal = await self.authenticator.authenticate(None)
            except AuthenticationError as exc:
                if exc.status != HTTPStatus.UNAUTHORIZED:
                    return connection.respond(exc.status, f"{exc}\n")
                # anonymous access is off: the first frame must be auth
                self._principals[connection] = _Admitted(NOBODY, token_sent=False, anonymous=False)
                return None
            self._principals[connection] = _Admitted(principal, token_sent=False)
            return None
        self._principals[connection] = _Admitted(principal)
        return None

    def readiness(self) -> dict[str, str | None]:
        """``/readyz``'s checks (:mod:`web.health`): ``feed``, the loop that reads the bus,
        ``None`` while it finishes rounds, else ``starting`` or ``stalled`` (no round for
        :data:`READY_STALE_S`)."""
        last = self._last_round_ns
        if last is None:
            return {"feed": "starting"}
        stale = self.clock() - last > READY_STALE_S * NS_PER_S
        return {"feed": "stalled" if stale else None}

    async def _subprotocol_principal(self, token: str) -> _Admitted:
        """The principal of a token offered as a subprotocol; refused, it is told on the
        opened connection (``unauthorized``, then 4401): a browser never sees an HTTP answer."""
        try:
            return _Admitted(await self.authenticate(token_text(token)))
        except (AuthenticationError, RequestError) as exc:
            self.stats.refused += 1
            return _Admitted(NOBODY, refusal=str(exc))

    async def authenticate(self, token: str) -> Principal:
        """The principal of ``token``: the authenticator's, unless ``auth.events`` revoked
        its key, session or account."""
        principal = await self.authenticator.authenticate(token)
        grant = principal.grant
        if grant is None:
            return principal
        now = self.clock() // NS_PER_S
        if self.denylist.refuses(grant, now):
            raise AuthenticationError("revoked: the token's key, session or account is revoked")
        current = self.denylist.plan_of(grant, now)  # a plan changed since the token
        return principal if current is grant else replace(principal, grant=current)

    async def _authenticate_frame(self, token: str) -> Principal:
        try:
            return await self.authenticate(token)
        except AuthenticationError:
            self.stats.refused += 1
            raise

    async def _serve_client(self, connection: ServerConnection) -> None:
        admitted = self._principals.pop(connection)
        if admitted.refusal is not None:
            await _refuse(connection, admitted.refusal)
            count_close(connection.protocol)
            return
        grant = admitted.principal.grant
        if grant is not None and self.denylist.refuses(grant, self.clock() // NS_PER_S):
            # revoked between its handshake and now (the revocation round did not see it)
            with contextlib.suppress(ConnectionClosed):
                await connection.close(CloseCode.FORBIDDEN, "revoked")
            count_close(connection.protocol)
            return
        send_buffer = self.settings.limits.socket_send_buffer
        sock = connection.transport.get_extra_info("socket")
        if send_buffer is not None and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        protocol = ConnectionProtocol(self.settings, admitted.principal, time.monotonic())
        session = Session(
            self.hub,
            WebsocketsLink(connection),
            protocol,
            self.directory,
            self.store,
            self.clock,
            self._authenticate_frame,
            reads=self.reads,
            alert_reads=self.alert_reads,
            token_sent=admitted.token_sent,
            anonymous=admitted.anonymous,
            slots=self._principal_slots,
        )
        self.stats.connections += 1
        self.sessions[connection] = session
        self.hub.attach(session)
        try:
            await session.carry_out(session.core.start())
            await self._await_auth(connection, session)
            if not session.closing:
                async for frame in connection:
                    await session.handle(frame)
                    if session.closing:
                        break
        except ConnectionClosed:
            pass
        finally:
            del self.sessions[connection]
            await session.finish()
            count_close(connection.protocol)

    async def _await_auth(self, connection: ServerConnection, session: Session) -> None:
        """A connection that must send ``auth`` first has ``auth_timeout`` seconds to do so
        (its token checked included); then it is closed with 4401."""
        wait = self.settings.auth_timeout
        deadline = time.monotonic() + wait
        with contextlib.suppress(TimeoutError):
            while session.core.must_auth and not session.closing:
                frame = await asyncio.wait_for(connection.recv(), deadline - time.monotonic())
                await asyncio.wait_for(session.handle(frame), deadline - time.monotonic())
        if session.core.must_auth and not session.closing:
            session.perform(session.core.auth_timed_out(wait))


@dataclass(frozen=True, slots=True)
class _Admitted:
    """What the handshake found out about a connection: its principal, whether it sent a
    token, whether it may stay anonymous, and why its subprotocol token was refused."""

    principal: Principal
    token_sent: bool = True
    anonymous: bool = True
    refusal: str | None = None


def _token_subprotocol(request: Request) -> str | None:
    """The token of a ``mdp.token.<token>`` subprotocol the client offered, if any."""
    try:
        offered = [
            name
            for header in request.headers.get_all("Sec-WebSocket-Protocol")
            for name in parse_subprotocol(header)
        ]
    except InvalidHeader:
        return None  # the handshake refuses it
    tokens = [name.removeprefix(TOKEN_SUBPROTOCOL) for name in offered]
    tokens = [token for name, token in zip(offered, tokens, strict=True) if token != name]
    if len(tokens) > 1:
        raise AuthenticationError("offer one mdp.token.<token> subprotocol, not several")
    return tokens[0] if tokens else None


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """``mdp.v1`` when the client offers it; none when it offers no subprotocol of ours (as
    before there was one); a token offered without ``mdp.v1`` is refused (400): a browser
    would fail a handshake that selects none of its subprotocols."""
    if SUBPROTOCOL in offered:
        return SUBPROTOCOL
    if any(name.startswith(TOKEN_SUBPROTOCOL) for name in offered):
        raise NegotiationError(f"offer {SUBPROTOCOL} beside {TOKEN_SUBPROTOCOL}<token>")
    return None


async def _refuse(connection: ServerConnection, message: str) -> None:
    """Tell an opened connection its token was refused, and close it (4401)."""
    with contextlib.suppress(ConnectionClosed):
        await connection.send(error(None, ErrorCode.UNAUTHORIZED, message, "token").decode())
        await connection.close(CloseCode.UNAUTHORIZED, "unauthorized")


def _address(peer: object) -> str:
    """The address part of a socket's peer name (the whole name when it is no tuple)."""
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _json_answer(
    connection: ServerConnection, status: int, body: bytes, headers: dict[str, str]
) -> Response:
    """A plain HTTP answer of ``body`` as JSON, with ``headers``, instead of a handshake."""
    response = connection.respond(HTTPStatus(status), "")
    del response.headers["Content-Type"], response.headers["Content-Length"]
    response.headers["Content-Type"] = JSON
    response.headers["Content-Length"] = str(len(body))
    for name, value in headers.items():
        response.headers[name] = value
    return replace(response, body=body)
