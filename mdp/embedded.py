"""The embedded platform: every service in one process over the in-process bus.

feed -> md.ticks -> engine runner -> md.candles -> storage writer -> PostgreSQL
(the writer also stores the ticks and everything rejected); the WebSocket gateway reads
md.candles and md.ticks for its clients, and the HTTP server serves the chart page and the
history API. The auth service, the trading service (:mod:`trading.process`: its API,
the paper venue on md.ticks, the outbox to trading.events), the main API
(:mod:`main_api.process`) and the alert evaluator (:mod:`main_api.alerts.runner`, from the
live end of md.ticks and md.candles, firings to alerts.events) run in the process too, and the
edge (HAProxy) in front of them all, the one public port (:mod:`mdp.front`); the gateway,
the history API, the trading API and the main API check tokens with the auth service's
keys, and the
first two read its revocations on ``auth.events``. The database is the one at
``database_url``, or a private server started from the machine's PostgreSQL binaries.

Stopping (Ctrl-C, SIGTERM, or the ``stop`` event) ends the feed first (a live venue's hands
over what it received and the gaps still open), then lets the engine and the writer finish
what was already accepted, saves the engine's checkpoint, and only then closes the database:
nothing accepted is lost, and the next start continues from there. A live venue's feed
resumes from the last trade stored of each instrument: the trades the venue sends again are
dropped as repeats, and the time the platform was stopped is a feed gap.

The database may go away while the platform runs (a restart, a terminated connection): the
engine, the gateway and the chart carry on with live data; the writer holds what it has not
stored and writes it once the database is back, and the feed waits when that buffer and the
bus are full. The status line and the history API's ``/readyz`` say so meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from access.grant import Grant
from access.jwks import JwksCache
from access.settings import TokenSettings
from auth.settings import AuthSettings
from charting.app import create_app_for_url
from charting.settings import ApiSettings
from core.alert_reads import AlertReads
from core.engine import CandleEngine, EngineConfig
from core.numbers import to_decimal
from core.secrets import DatabaseUrl
from core.topics import TICKS
from core.trading_reads import TradingReads
from edge.config import EdgeSettings, TokenPolicy, Upstream
from ingest.files import ReadReport
from ingest.publisher import FeedEvent, FeedPublisher
from ingest.sources import VenueSource, replay, stop_feeding, venue
from ingest.synthetic import DEFAULT_INSTRUMENTS
from ingest.synthetic_market import SyntheticMarket, SyntheticResume
from ingest.venues import venue_protocol
from ingest.venues.session import FeedCounters
from ingest.venues.settings import VenueSettings
from machine import reserved_port
from main_api.alert_reads import AlertSnapshots
from main_api.alerts.runner import EvaluatorService, EvaluatorSettings
from main_api.process import running as running_main_api
from main_api.settings import DEFAULT_SCHEMA as MAIN_API_SCHEMA
from main_api.settings import MainApiSettings
from main_api.store import MainStore
from mdp.front import (
    EMBEDDED_CHECK_TIMEOUT_S,
    Edge,
    access_keys,
    anonymous_claims,
    auth_service,
    embedded_auth,
    haproxy_missing,
    jwks_url,
)
from mdp.progress import Progress
from mdp.status import Counts, counts_from, status_line
from storage import PostgresServer, PostgresStore
from storage.backlog import DEFAULT_MAX_BYTES
from storage.checkpoints import PostgresCheckpoints
from storage.migrate import migrate_async
from storage.pg_server import PRIVATE_DATABASE
from storage.writer import StorageWriter
from streams.engine_runner import DEFAULT_GROUP, EngineRunner, restore_engine
from streams.memory import MemoryBus
from telemetry.admin import DEFAULT_HOST as ADMIN_HOST
from telemetry.admin import admin_server
from trading.process import ProcessSettings
from trading.process import running as running_trading
from trading.readmodels.snapshots import AccountSnapshots
from trading.readmodels.tables import DEFAULT_SCHEMA
from web.server import ApiServer, serving
from ws_gateway import Gateway, GatewaySettings
from ws_gateway.admission import page_origins
from ws_gateway.tokens import AccessTokens

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """The synthetic market (default; it starts with ``history`` seconds of the past), a tick
    file replayed at ``speed`` (None: at once), or a live venue's ``symbols`` (at
    ``venue_url``, else the venue's public endpoint; dropped as stale after ``stale_after``
    seconds without a frame, else after the venue's default)."""

    replay: Path | None = None
    format: str | None = None
    instrument: str | None = None
    speed: float | None = 1.0
    instruments: tuple[str, ...] = DEFAULT_INSTRUMENTS
    rate: float = 20.0
    seed: int = 0
    history: float = 86_400.0
    venue: str | None = None
    symbols: tuple[str, ...] = ()
    venue_url: str | None = None
    stale_after: float | None = None

    def live_instruments(self) -> tuple[str, ...]:
        """The instruments known before the first tick (a replay's come with its ticks)."""
        if self.venue is not None:
            protocol = venue_protocol(self.venue)
            return tuple(protocol.instrument(symbol) for symbol in self.symbols)
        return () if self.replay else self.instruments


@dataclass(frozen=True, slots=True)
class PlatformSettings:
    """Everything ``mdp up`` needs, read once from the command line and the environment."""

    database_url: DatabaseUrl | None = None
    data_dir: Path | None = None
    feed: FeedSettings = field(default_factory=FeedSettings)
    engine: EngineConfig = field(default_factory=EngineConfig)
    host: str = "127.0.0.1"
    http_port: int = 8000
    ws_port: int = 8765
    allowed_origins: tuple[str, ...] = ()
    """Browser origins the gateway accepts besides the chart's own."""
    auth: AuthSettings = field(default_factory=embedded_auth)
    """The auth service's: its plans (the anonymous one included), token lifetimes."""
    edge: bool = True
    """HAProxy in front, on ``http_port``, when the machine has it (``docs/edge.md``)."""
    metrics_port: int = 0
    """The platform's Prometheus metrics (:mod:`telemetry.admin`), on 127.0.0.1 (0: a free
    port)."""
    edge_metrics_port: int = 0
    """HAProxy's own Prometheus metrics, on 127.0.0.1 (0: a free port)."""
    status_every: float = 1.0
    write_buffer: int = DEFAULT_MAX_BYTES
    """Bytes the storage writer holds while the database is unavailable (then: backpressure)."""


@dataclass(slots=True)
class Platform:
    """One running embedded platform; :meth:`run` until ``stop`` is set."""

    settings: PlatformSettings
    out: TextIO
    clock: Callable[[], int] = time.time_ns
    database_url: DatabaseUrl | None = None
    bus: MemoryBus | None = None
    feed: FeedPublisher | None = None
    engine: EngineRunner | None = None
    writer: StorageWriter | None = None
    chart_url: str | None = None
    gateway_url: str | None = None
    trading_url: str | None = None
    main_api_url: str | None = None
    metrics_url: str | None = None
    """The platform's ``/metrics`` (the admin server's)."""
    gateway: Gateway | None = None
    """The WebSocket gateway, once it runs (its private channels read the trading models)."""
    evaluator: EvaluatorService | None = None
    """The alert evaluator (firings into the main API's tables and on ``alerts.events``)."""

    async def run(self, stop: asyncio.Event) -> None:
        async with contextlib.AsyncExitStack() as stack:
            database = await stack.enter_async_context(self._database())
            self.database_url = database
            self._say(f"database: {database}")
            url = database.reveal()
            schema = await migrate_async(url)
            self._say(f"storage: {schema.mode} mode ({schema.reason})")
            store = await stack.enter_async_context(PostgresStore.open(url))
            self.bus = bus = await stack.enter_async_context(MemoryBus(partitions=4))
            self.writer = writer = StorageWriter(
                bus, store, buffer_bytes=self.settings.write_buffer
            )
            self.feed = feed = FeedPublisher(bus)
            front = await self._front(stack, url, bus, store)
            source = await self._source(feed, store)
            # restored just before the feed starts: it restarts on the wall clock from here
            checkpoints = PostgresCheckpoints(url)
            engine = await restore_engine(
                checkpoints, DEFAULT_GROUP, lambda: CandleEngine(self.settings.engine), self.clock()
            )
            ticks = bus.topic(TICKS)
            self.engine = runner = EngineRunner(
                bus, engine, checkpoints, clock=self.clock,
                input_held=lambda: ticks.waiting_publishers > 0,
            )  # fmt: skip
            started = counts_from()  # the process's metrics count from before this platform
            writing = asyncio.create_task(writer.run(), name="writer")
            running = asyncio.create_task(runner.run(), name="engine")
            await asyncio.sleep(0)  # both subscribe before the first tick is published
            feeding = asyncio.create_task(feed.run(source), name="feed")
            venue = source.feed.counters if isinstance(source, VenueSource) else None
            report = self._report(bus, feed, writer, venue, started)
            watchers = [asyncio.create_task(report, name="status")]
            if isinstance(source, SyntheticMarket):
                history = self._history(source, runner, writer)
                watchers.append(asyncio.create_task(history, name="history"))
            alerts_store = await stack.enter_async_context(MainStore.open(url))
            # from the live end (not the synthetic history); the states of earlier runs'
            # buses are dropped (their offsets mean nothing on this one)
            alerts = EvaluatorSettings(start="latest", forget_other_buses=True)
            self.evaluator = EvaluatorService(alerts_store, bus, url, alerts)
            evaluator_stop = asyncio.Event()
            evaluating = asyncio.create_task(
                self._evaluate(self.evaluator, evaluator_stop, source, runner), name="alerts"
            )
            services = [writing, running, evaluating]
            if front is not None:
                services.append(asyncio.create_task(front.watch(), name="edge"))
                watchers.append(services[-1])
            try:
                await _until(stop, services, feeding)
            finally:
                for watcher in watchers:
                    watcher.cancel()
                evaluator_stop.set()
                await _settled(evaluating)
                await _shutdown(feeding, source, runner, running, writer, writing)
                counted = counts_from() - started
                self._say(status_line(counted, writer.stats, finished=feed.stats.finished))
                self._say("stopped cleanly")

    @contextlib.asynccontextmanager
    async def _database(self) -> AsyncIterator[DatabaseUrl]:
        if self.settings.database_url is not None:
            yield self.settings.database_url
            return
        server = PostgresServer(self.settings.data_dir)
        self._say(f"starting a private PostgreSQL in {server.data_dir}")
        await asyncio.to_thread(server.start)
        try:
            yield DatabaseUrl(await asyncio.to_thread(server.create_database, PRIVATE_DATABASE))
        finally:
            if server.started_here:
                await asyncio.to_thread(server.stop)

    async def _front(
        self, stack: contextlib.AsyncExitStack, url: str, bus: MemoryBus, store: PostgresStore
    ) -> Edge | None:
        """The auth service, the gateway and the history API; and the edge in front of them
        (returned) when it is wanted and the machine has HAProxy."""
        settings = self.settings
        edge = settings.edge
        if edge:
            missing = haproxy_missing()
            if missing is not None:
                self._say(f"edge: not started, serving without it: {missing}")
                edge = False
        # behind the edge every service listens on a free port of 127.0.0.1
        host = "127.0.0.1" if edge else settings.host
        # ports the edge will bind are held from now on: the services started meanwhile (and
        # their outgoing connections) must not be handed them
        edge_ports = self._edge_ports(stack) if edge else None
        public_port = edge_ports[0] if edge_ports else None
        admin = stack.enter_context(admin_server(ADMIN_HOST, settings.metrics_port))
        self.metrics_url = admin.url
        auth = await stack.enter_async_context(auth_service(url, settings.auth, bus, host))
        anonymous = settings.auth.plans.anonymous or "none (a token is needed)"
        self._say(f"auth: {auth.url}/auth  (anonymous plan: {anonymous})")
        keys = await stack.enter_async_context(access_keys(auth, settings.auth))
        # the private channels read the trading read models and the main API's firings
        # (their tables made by the trading process and the main API below: until then
        # their snapshots answer unavailable)
        reads = await stack.enter_async_context(AccountSnapshots.open(url, DEFAULT_SCHEMA))
        alert_reads = await stack.enter_async_context(AlertSnapshots.open(url, MAIN_API_SCHEMA))
        gateway = await stack.enter_async_context(
            self._gateway(
                bus, store, keys, host, 0 if edge else settings.ws_port, public_port, reads,
                alert_reads,
            )
        )  # fmt: skip
        # the page's WebSocket: the edge's /ws beside the page, or the gateway's own port
        ws_url = "/ws" if edge else f"ws://{{host}}:{gateway.port}/ws"
        api = await stack.enter_async_context(
            self._http(url, bus, jwks_url(auth), host, 0 if edge else settings.http_port, ws_url)
        )
        trading = await stack.enter_async_context(
            running_trading(
                ProcessSettings(
                    url, self._tokens(jwks_url(auth)), host=host, port=0, deposits=True
                ),
                bus, lambda text: self._say(f"trading: {text}"),
            )
        )  # fmt: skip
        main_api = await stack.enter_async_context(
            running_main_api(MainApiSettings(url, self._tokens(jwks_url(auth)), host=host, port=0),
                             bus)
        )  # fmt: skip
        front = None
        if edge_ports is None:
            self.chart_url, self.gateway_url = f"{api.url}/", gateway.url
        else:
            edge_settings = self._edge_settings(edge_ports, api, gateway, auth, trading, main_api)
            front = await stack.enter_async_context(
                Edge(edge_settings, jwks_url(auth), bus, self._say)
            )
            self.chart_url = f"{front.url}/"
            self.gateway_url = f"ws{front.url.removeprefix('http')}/ws"
            self._say(f"edge: {front.url}  (HAProxy)")
            self._say(f"edge-metrics: {front.metrics_url}")
        self._say(f"gateway: {self.gateway_url}")
        self._say(f"chart: {self.chart_url}  (history API: {self.chart_url}v1, /udf)")
        self._say(f"metrics: {self.metrics_url}")
        self.trading_url = f"{front.url if front else trading.url}/trading/v1"
        self._say(f"trading: {self.trading_url}")
        self.main_api_url = f"{front.url if front else main_api.url}/api/v1"
        self._say(f"main-api: {self.main_api_url}")
        return front

    def _edge_ports(self, stack: contextlib.AsyncExitStack) -> tuple[int, int]:
        """The edge's public and admin ports: each as set, or when 0 a free port held until
        the platform stops (HAProxy binds it beside the holder: ``machine.reserved_port``)."""
        settings = self.settings
        public = settings.http_port or stack.enter_context(reserved_port(settings.host))
        admin = settings.edge_metrics_port or stack.enter_context(reserved_port("127.0.0.1"))
        return public, admin

    def _edge_settings(
        self,
        ports: tuple[int, int],
        api: ApiServer,
        gateway: Gateway,
        auth: ApiServer,
        trading: ApiServer,
        main_api: ApiServer,
    ) -> EdgeSettings:
        settings = self.settings
        history = Upstream("api", (f"127.0.0.1:{api.port}",))
        return EdgeSettings(
            host=settings.host,
            port=ports[0],
            admin_host="127.0.0.1",
            admin_port=ports[1],
            chart=history,
            history=history,
            gateway=Upstream("gateway", (f"127.0.0.1:{gateway.port}",), websocket=True),
            auth=Upstream("auth", (f"127.0.0.1:{auth.port}",)),
            trading=Upstream("trading", (f"127.0.0.1:{trading.port}",)),
            main_api=Upstream("main-api", (f"127.0.0.1:{main_api.port}",)),
            tokens=TokenPolicy(settings.auth.issuer, settings.auth.audience, ()),
            anonymous=settings.auth.plans.anonymous is not None,
            check_timeout_s=EMBEDDED_CHECK_TIMEOUT_S,
        )

    @contextlib.asynccontextmanager
    async def _gateway(
        self,
        bus: MemoryBus,
        store: PostgresStore,
        keys: JwksCache,
        host: str,
        port: int,
        public_port: int | None,
        reads: TradingReads | None = None,
        alert_reads: AlertReads | None = None,
    ) -> AsyncIterator[Gateway]:
        """The gateway on ``host:port``, checking tokens with ``keys``; the chart's origin is
        the edge's (``public_port``) or the history API's. Behind the edge every client has
        the edge's address, so the gateway caps no address there (the edge limits each)."""
        settings = self.settings
        instruments = settings.feed.live_instruments()
        page_port = settings.http_port if public_port is None else public_port
        gateway_settings = GatewaySettings(
            host=host,
            port=port,
            intervals=settings.engine.intervals,
            instruments=instruments,
            allowed_origins=page_origins(settings.host, page_port) + settings.allowed_origins,
            allow_anonymous=settings.auth.plans.anonymous is not None,
        )
        if public_port is not None:
            gateway_settings = replace(gateway_settings, max_connections_per_address=0)
        anonymous = anonymous_claims(settings.auth)
        grant = None if anonymous is None else Grant.anonymous(anonymous)
        tokens = AccessTokens(keys, grant)
        async with Gateway(
            bus, store, gateway_settings, tokens, reads=reads, alert_reads=alert_reads
        ) as gateway:
            self.gateway = gateway
            yield gateway

    def _tokens(self, keys: str) -> TokenSettings:
        """How the trading API and the main API check tokens: the auth service's key set,
        never anonymous."""
        auth = self.settings.auth
        return TokenSettings(jwks_url=keys, issuer=auth.issuer, audience=auth.audience)

    @contextlib.asynccontextmanager
    async def _http(
        self, url: str, bus: MemoryBus, keys: str, host: str, port: int, ws_url: str
    ) -> AsyncIterator[ApiServer]:
        """The history API and the chart page, checking tokens with the key set at ``keys``
        and revocations on ``bus``; the page's WebSocket is ``ws_url``."""
        settings = self.settings
        engine = settings.engine
        api = ApiSettings(
            intervals=engine.intervals,
            ws_url=ws_url,
            final_after_ns=engine.horizon_ns + engine.lateness_ns,
            tokens=dataclasses.replace(
                self._tokens(keys), anonymous=anonymous_claims(settings.auth)
            ),
        )
        app = create_app_for_url(url, api, bus)
        async with serving(app, host, port) as server:
            yield server

    async def _source(
        self, publisher: FeedPublisher, store: PostgresStore
    ) -> AsyncIterable[FeedEvent]:
        feed = self.settings.feed
        if feed.venue is not None:
            self._say(f"feed: {feed.venue} {', '.join(feed.symbols)} live")
            resume = await store.last_trades(feed.live_instruments())
            for instrument, (trade_id, _) in sorted(resume.items()):
                self._say(f"feed: {instrument} resumes after the stored trade id {trade_id}")
            settings = VenueSettings(url=feed.venue_url, stale_after=feed.stale_after)
            return venue(feed.venue, feed.symbols, settings, publisher.reject, resume)
        if feed.replay is None:
            self._say(f"feed: synthetic {', '.join(feed.instruments)} at {feed.rate:g} ticks/s")
            continues = await _synthetic_resume(store, feed.instruments)
            for instrument, last in sorted(continues.items()):
                self._say(f"feed: {instrument} continues from its last stored price {last.price}")
            return SyntheticMarket(
                feed.instruments, feed.rate, feed.seed, feed.history, continues, self.clock
            )
        report = ReadReport(on_bad=publisher.bad_row)
        pace = "as fast as it goes" if feed.speed is None else f"at {feed.speed:g}x"
        self._say(f"feed: replaying {feed.replay} {pace}")
        return replay(feed.replay, report, feed.speed, feed.format, feed.instrument)

    async def _evaluate(
        self,
        evaluator: EvaluatorService,
        stop: asyncio.Event,
        source: AsyncIterable[FeedEvent],
        engine: EngineRunner,
    ) -> None:
        """The alert evaluator, from the end of the synthetic market's history (alerts fire
        on the live market, not on the backfill)."""
        if isinstance(source, SyntheticMarket):
            while engine.stats.ticks < source.history_ticks and not stop.is_set():
                await asyncio.sleep(0.1)
        self._say("alerts: evaluating md.ticks and md.candles")
        await evaluator.run(stop)

    async def _history(
        self, market: SyntheticMarket, engine: EngineRunner, writer: StorageWriter
    ) -> None:
        """Say how the synthetic market's history is stored: its ticks, and the candles the
        engine made of them (progress lines after a second)."""
        total = market.history_ticks
        if not total:
            return
        progress = Progress(self.out)

        async def stored(done: Callable[[], bool], say: Callable[[], str]) -> None:
            while not done():
                progress.update(f"history: {say()}")
                await asyncio.sleep(0.1)

        await stored(
            lambda: engine.stats.ticks >= total,
            lambda: f"{min(writer.stats.ticks, total):,} of {total:,} ticks stored",
        )
        candles = engine.stats.candles
        await stored(
            lambda: writer.stats.ticks >= total and writer.stats.candles >= candles,
            lambda: (
                f"{min(writer.stats.ticks, total):,} of {total:,} ticks and"
                f" {min(writer.stats.candles, candles):,} of {candles:,} candle updates stored"
            ),
        )
        since = datetime.fromtimestamp(market.history_from / 1e9, UTC)
        progress.done(
            f"history since {since:%Y-%m-%d %H:%M:%S} UTC: {total:,} ticks and {candles:,} candle"
            f" updates stored in {progress.elapsed:.1f}s"
        )

    async def _report(
        self,
        bus: MemoryBus,
        feed: FeedPublisher,
        writer: StorageWriter,
        venue: FeedCounters | None,
        started: Counts,
    ) -> None:
        while True:
            await asyncio.sleep(self.settings.status_every)
            paused = bus.topic(TICKS).waiting_publishers > 0  # the feed, not the engine
            line = status_line(
                counts_from() - started, writer.stats, venue, paused=paused,
                finished=feed.stats.finished,
            )  # fmt: skip
            if self.out.isatty():
                self.out.write("\r\x1b[K" + line)
                self.out.flush()
            else:
                self._say(line)

    def _say(self, text: str) -> None:
        if self.out.isatty():
            text = "\r\x1b[K" + text
        print(text, file=self.out, flush=True)


async def _synthetic_resume(
    store: PostgresStore, instruments: tuple[str, ...]
) -> dict[str, SyntheticResume]:
    """Where each synthetic instrument with stored trades continues: its last trade."""
    resume = {}
    for instrument, (_, ts_event) in (await store.last_trades(instruments)).items():
        last = await store.ticks(instrument, ts_event, ts_event + 1)
        price = to_decimal(int(last.price[-1]), last.price_scale)
        resume[instrument] = SyntheticResume(price, ts_event)
    return resume


async def _until(
    stop: asyncio.Event, services: list[asyncio.Task[None]], feed: asyncio.Task[None]
) -> None:
    """Wait for ``stop``. A failing task raises here; a finished feed (a replay) does not end
    the wait, so that its last candles still close on the wall clock."""
    stopping = asyncio.create_task(stop.wait())
    pending: set[asyncio.Task[object]] = {stopping, feed, *services}
    try:
        while stopping in pending and not pending.isdisjoint(services):
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopping}:
                task.result()
    finally:
        stopping.cancel()


async def _shutdown(
    feeding: asyncio.Task[None],
    source: AsyncIterable[FeedEvent],
    engine: EngineRunner,
    running: asyncio.Task[None],
    writer: StorageWriter,
    writing: asyncio.Task[None],
) -> None:
    """Feed off first; then the engine, then the writer, each once it has read everything."""
    await stop_feeding(feeding, source)
    engine.drain()
    await _settled(running)
    writer.drain()
    await _settled(writing)


async def _settled(task: Awaitable[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await task
