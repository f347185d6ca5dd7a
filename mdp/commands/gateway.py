"""``mdp gateway``: the WebSocket gateway as a service of its own (cluster mode).

It reads ``md.candles`` and ``md.ticks`` from the bus with a consumer group of its own, so that
several gateways can run behind a load balancer, and deepens snapshots from the database at
``DATABASE_URL`` (or ``--database-url``) when one is given. In cluster mode the bus is Kafka;
until the Kafka adapter lands, ``--bus memory`` (an in-process bus nothing else publishes on)
is the only choice, good for checking the listener and its settings. ``mdp up`` runs the same
gateway inside the embedded platform. The protocol: ``docs/protocol.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg

from core.secrets import DatabaseUrl
from mdp.cluster_options import kafka_bus
from mdp.common_options import (
    add_database_option,
    add_interval_option,
    add_origin_option,
    database_failure,
    intervals_of,
    origins_of,
)
from storage import PostgresStore, SchemaNotReadyError
from storage.repository import MarketDataStore
from streams.bus import Bus
from streams.memory import MemoryBus
from ws_gateway import DEFAULT_PORT, Gateway, GatewaySettings, Limits

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1

_DEFAULT_LIMITS = Limits()
_DEFAULT_SETTINGS = GatewaySettings()
BusFactory = Callable[[argparse.Namespace], contextlib.AbstractAsyncContextManager[Bus]]


@contextlib.asynccontextmanager
async def _memory_bus(args: argparse.Namespace) -> AsyncIterator[Bus]:
    async with MemoryBus() as bus:
        yield bus


BUSES: dict[str, BusFactory] = {"memory": _memory_bus, "kafka": kafka_bus}
"""How each ``--bus`` choice is opened; the Kafka adapter adds ``"kafka"`` here."""


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
    add_interval_option(parser, "served candle intervals")
    parser.add_argument(
        "--no-anonymous",
        action="store_true",
        help="refuse clients without a token (no authenticator is wired yet: refuses everyone)",
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
    parser.set_defaults(run=run)


def settings_from(args: argparse.Namespace) -> GatewaySettings:
    """The gateway's settings from the command line (raises ValueError when bad)."""
    intervals = intervals_of(args)
    origins = origins_of(args)
    return GatewaySettings(
        host=args.host,
        port=args.port,
        intervals=intervals,
        allow_anonymous=not args.no_anonymous,
        heartbeat=args.heartbeat,
        gap_notices=args.gap_notices,
        allowed_origins=_DEFAULT_SETTINGS.allowed_origins if origins is None else origins,
        max_connections_per_address=args.max_connections_per_ip,
        limits=Limits(max_subscriptions=args.max_subscriptions, rate=args.rate),
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"mdp gateway: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        asyncio.run(serve(settings, BUSES[args.bus](args), args.database_url))
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


async def serve(
    settings: GatewaySettings,
    bus_context: contextlib.AbstractAsyncContextManager[Bus],
    database_url: DatabaseUrl | None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the gateway until ``stop`` is set (by default: until SIGINT or SIGTERM)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    async with bus_context as bus, _store(database_url) as store:
        gateway = Gateway(bus, store, settings)
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
