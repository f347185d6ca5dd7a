"""``mdp gateway``: the WebSocket gateway as a service of its own (cluster mode).

It reads ``md.candles`` and ``md.ticks`` from the bus with a consumer group of its own, so that
several gateways can run behind a load balancer, and deepens snapshots from the database at
``DATABASE_URL`` (or ``--database-url``) when one is given. In cluster mode the bus is Kafka;
until the Kafka adapter lands, ``--bus memory`` (an in-process bus nothing else publishes on)
is the only choice, good for checking the listener and its settings. ``mdp up`` runs the same
gateway inside the embedded platform. The protocol: ``docs/protocol.md``.

With ``--trading-database-url`` (or ``TRADING_DATABASE_URL``) it reads ``trading.events`` too
and serves each trading account its private channels ``orders``, ``fills`` and ``positions``,
from snapshots of the trading read models (``--trading-schema``). With
``--main-api-database-url`` (or ``MAIN_API_DATABASE_URL``) it reads ``alerts.events`` and
serves each account its private channel ``alerts``, from snapshots of the firings the main
API recorded (``--main-api-schema``).

With ``--jwks-url`` (the auth service's ``/auth/.well-known/jwks.json``) it checks access
tokens itself against that key set, kept through an auth outage, and enforces their plans;
clients without a token must present one, or get the ``--anonymous`` plan. Without it, any
token is refused and clients without one read everything in real time (unless
``--no-anonymous``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from access.grant import Grant
from access.settings import TokenSettings
from core.secrets import DatabaseUrl
from machine import settle_heap
from main_api.alert_reads import AlertSnapshots
from main_api.settings import DEFAULT_SCHEMA as MAIN_API_SCHEMA
from mdp.admin_options import add_admin_options
from mdp.cluster_options import kafka_bus
from mdp.common_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_database_option,
    add_interval_option,
    add_issuer_options,
    add_origin_option,
    add_reads_options,
    add_token_options,
    anonymous_plan,
    database_failure,
    intervals_of,
    origins_of,
    token_settings,
)
from mdp.tls_options import add_tls_options, tls_of
from storage import PostgresStore, SchemaNotReadyError
from storage.repository import MarketDataStore
from streams.bus import Bus
from streams.memory import MemoryBus
from trading.readmodels.snapshots import AccountSnapshots
from trading.readmodels.tables import DEFAULT_SCHEMA as TRADING_SCHEMA
from ws_gateway import DEFAULT_PORT, Gateway, GatewaySettings, Limits
from ws_gateway.auth import Authenticator
from ws_gateway.tokens import AccessTokens

_DEFAULT_LIMITS = Limits()
_DEFAULT_SETTINGS = GatewaySettings()
BusFactory = Callable[[argparse.Namespace], contextlib.AbstractAsyncContextManager[Bus]]


@contextlib.asynccontextmanager
async def _memory_bus(args: argparse.Namespace) -> AsyncIterator[Bus]:
    async with MemoryBus() as bus:
        yield bus


BUSES: dict[str, BusFactory] = {"memory": _memory_bus, "kafka": kafka_bus}
"""How each ``--bus`` choice is opened; the Kafka adapter adds ``"kafka"`` here."""
VERIFIED_TOKENS_KEPT = 4096
"""Tokens whose signature check a gateway remembers (a reconnect costs no second check)."""


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "gateway",
        help="run the WebSocket gateway on its own",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument(
        "--bus",
        choices=sorted(BUSES),
        default="memory",
        help="where md.candles and md.ticks come from (cluster mode needs the Kafka adapter)",
    )
    add_database_option(parser, "snapshots come from memory only")
    add_reads_options(
        parser, "trading", "channels orders, fills and positions", "the trading read models",
        TRADING_SCHEMA,
    )  # fmt: skip
    add_reads_options(
        parser, "main-api", "channel alerts", "the main API's firings", MAIN_API_SCHEMA
    )
    add_interval_option(parser, "served candle intervals")
    parser.add_argument(
        "--no-anonymous",
        action="store_true",
        help="without --jwks-url, refuse clients without a token (with it, that is the default)",
    )
    add_token_options(parser, "none, any token is refused", "client")
    add_issuer_options(parser)
    parser.add_argument(
        "--auth-timeout",
        type=float,
        default=_DEFAULT_SETTINGS.auth_timeout,
        metavar="SECONDS",
        help="where a token is required, how long a connection opened without one has to send"
        f" its auth frame (default {_DEFAULT_SETTINGS.auth_timeout:g})",
    )
    add_origin_option(parser, "pages on this machine: http://127.0.0.1:*, http://localhost:*")
    parser.add_argument(
        "--max-connections-per-ip",
        type=int,
        default=_DEFAULT_SETTINGS.max_connections_per_address,
        metavar="N",
        help="connections one client address may hold at once (default"
        f" {_DEFAULT_SETTINGS.max_connections_per_address}; 0: no cap, for a gateway behind a"
        " proxy that caps them itself)",
    )
    parser.add_argument(
        "--max-subscriptions", type=int, default=_DEFAULT_LIMITS.max_subscriptions, metavar="N"
    )
    parser.add_argument(
        "--rate", type=float, default=_DEFAULT_LIMITS.rate, help="requests/s per connection"
    )
    parser.add_argument(
        "--heartbeat", type=float, default=5.0, metavar="SECONDS", help="heartbeat period"
    )
    parser.add_argument(
        "--gap-notices",
        type=int,
        default=_DEFAULT_SETTINGS.gap_notices,
        metavar="N",
        help="feed-gap notices kept per instrument for resumes and snapshots"
        f" (default {_DEFAULT_SETTINGS.gap_notices})",
    )
    add_admin_options(parser)
    add_tls_options(parser)
    parser.set_defaults(run=run)


def tokens_from(args: argparse.Namespace) -> TokenSettings:
    """How tokens are checked, from the command line (raises ValueError when bad)."""
    return token_settings(args, anonymous=anonymous_plan(args), token_cache=VERIFIED_TOKENS_KEPT)


def _anonymous_allowed(args: argparse.Namespace) -> bool:
    if args.jwks_url is not None:
        return args.anonymous is not None
    return not args.no_anonymous


def settings_from(args: argparse.Namespace) -> GatewaySettings:
    """The gateway's settings from the command line (raises ValueError when bad)."""
    intervals = intervals_of(args)
    origins = origins_of(args)
    return GatewaySettings(
        host=args.host,
        port=args.port,
        intervals=intervals,
        allow_anonymous=_anonymous_allowed(args),
        auth_timeout=args.auth_timeout,
        heartbeat=args.heartbeat,
        gap_notices=args.gap_notices,
        allowed_origins=_DEFAULT_SETTINGS.allowed_origins if origins is None else origins,
        max_connections_per_address=args.max_connections_per_ip,
        limits=Limits(max_subscriptions=args.max_subscriptions, rate=args.rate),
        tls=tls_of(args),
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        tokens = tokens_from(args)
    except ValueError as exc:  # a PlanError too
        print(f"mdp gateway: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        trading = ReadDatabase(args.trading_database_url, args.trading_schema)
        main_api = ReadDatabase(args.main_api_database_url, args.main_api_schema)
        settle_heap()  # the modules out of every later collection: short pauses
        asyncio.run(
            serve(
                settings, BUSES[args.bus](args), args.database_url, tokens=tokens,
                trading=trading, main_api=main_api,
            )
        )  # fmt: skip
    except (OSError, SchemaNotReadyError) as exc:
        print(f"mdp gateway: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except psycopg.Error as exc:
        print(f"mdp gateway: error: {database_failure(args.database_url, exc)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


@contextlib.asynccontextmanager
async def _store(url: DatabaseUrl | None) -> AsyncIterator[MarketDataStore | None]:
    if url is None:
        yield None
        return
    async with PostgresStore.open(url.reveal()) as store:
        yield store


@dataclass(frozen=True, slots=True)
class ReadDatabase:
    """Where private channels' snapshots are read: a service's database (None: the channels
    are not served) and the schema of its tables."""

    url: DatabaseUrl | None = None
    schema: str = TRADING_SCHEMA


R = TypeVar("R")


@contextlib.asynccontextmanager
async def reads_of(
    database: ReadDatabase, opened: Callable[[str, str], contextlib.AbstractAsyncContextManager[R]]
) -> AsyncIterator[R | None]:
    """A read interface of private channels, ``opened`` on ``database`` (None without a
    URL)."""
    if database.url is None:
        yield None
        return
    async with opened(database.url.reveal(), database.schema) as reads:
        yield reads


@contextlib.asynccontextmanager
async def authenticator(tokens: TokenSettings) -> AsyncIterator[Authenticator | None]:
    """The authenticator ``tokens`` describe (None: the gateway's default, anonymous reads as
    its settings say); with a key set, its cache lives as long as the context."""
    keys = tokens.key_cache()
    if keys is None:
        yield None
        return
    anonymous = None if tokens.anonymous is None else Grant.anonymous(tokens.anonymous)
    async with keys:
        yield AccessTokens(keys, anonymous)


async def serve(
    settings: GatewaySettings,
    bus_context: contextlib.AbstractAsyncContextManager[Bus],
    database_url: DatabaseUrl | None,
    stop: asyncio.Event | None = None,
    tokens: TokenSettings | None = None,
    trading: ReadDatabase | None = None,
    main_api: ReadDatabase | None = None,
) -> None:
    """Run the gateway until ``stop`` is set (by default: until SIGINT or SIGTERM); with a
    ``trading`` database, it serves the trading channels too, and with a ``main_api`` one the
    ``alerts`` channel."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    async with (
        bus_context as bus,
        _store(database_url) as store,
        authenticator(tokens or TokenSettings()) as checks,
        reads_of(trading or ReadDatabase(), AccountSnapshots.open) as reads,
        reads_of(main_api or ReadDatabase(), AlertSnapshots.open) as alerts,
    ):
        gateway = Gateway(bus, store, settings, checks, reads=reads, alert_reads=alerts)
        running = asyncio.create_task(gateway.run(), name="gateway")
        started = asyncio.create_task(gateway.started.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([started, running], return_when=asyncio.FIRST_COMPLETED)
            if started.done():
                print(f"mdp gateway: listening on {gateway.url}", file=sys.stderr, flush=True)
                await asyncio.wait([stopping, running], return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
            stopping.cancel()
            gateway.stop()
            await running
        print("mdp gateway: stopped", file=sys.stderr, flush=True)
