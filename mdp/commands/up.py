"""``mdp up``: the whole platform in one process (the embedded mode).

Without DATABASE_URL (or --database-url) it starts a private PostgreSQL from the machine's
binaries, with its data in a folder of its own that later runs reuse. The feed is a synthetic
market unless --replay names a tick file or --venue a live venue (--venue kraken --symbols
BTC/USD). The auth service runs inside, and the edge (the machine's HAProxy) is the one public
port in front of every service, which listen on 127.0.0.1 behind it; without HAProxy it says
so and serves without the edge. It prints the chart's URL (default
http://127.0.0.1:8000/) and the platform's Prometheus metrics URL (--metrics-port; HAProxy's
own are --edge-metrics-port). Ctrl-C or SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from pathlib import Path
from typing import Any

import psycopg

from auth.plans import PlanError
from auth.settings import AuthSettings
from core.engine import EngineConfig
from edge.haproxy import EdgeError
from ingest.files import TickFileError
from ingest.venues import empty_by_venue
from mdp.common_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_database_option,
    add_interval_option,
    add_origin_option,
    add_write_buffer_option,
    database_failure,
    intervals_of,
    origins_of,
    write_buffer_of,
)
from mdp.embedded import FeedSettings, Platform, PlatformSettings
from mdp.feed_options import add_feed_options, check_feed_options, instruments_of, symbols_of
from mdp.front import embedded_auth
from storage import PostgresServerError, PostgresUnavailableError
from trading.watch import ProcessFailed

MAX_HISTORY_HOURS = 24 * 31
"""A month of synthetic history at most (a few million ticks)."""


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "up",
        help="run the whole platform in one process",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_database_option(parser, "a private server")
    parser.add_argument(
        "--data-dir", type=Path, help="the private server's folder (default: a per-user state dir)"
    )
    serve = parser.add_argument_group("serving")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--http-port", type=int, default=8000,
        help="the public port (0: a free one): the edge's, or without it the chart page's and"
        " the history API's",
    )  # fmt: skip
    serve.add_argument(
        "--ws-port", type=int, default=8765,
        help="the WebSocket gateway's, without the edge (0: a free port); behind the edge it is"
        " /ws on the public port",
    )  # fmt: skip
    serve.add_argument(
        "--no-edge", action="store_true",
        help="serve without HAProxy in front (it is also left out when the machine has none)",
    )  # fmt: skip
    serve.add_argument(
        "--metrics-port", type=int, default=0,
        help="the platform's Prometheus metrics (/metrics) on 127.0.0.1 (default 0: a free"
        " port, printed on the metrics: line)",
    )  # fmt: skip
    serve.add_argument(
        "--edge-metrics-port", type=int, default=0,
        help="HAProxy's own Prometheus metrics on 127.0.0.1 (default 0: a free port, printed"
        " on the edge-metrics: line)",
    )  # fmt: skip
    serve.add_argument(
        "--anonymous", metavar="PLAN",
        help="the plan of visitors without a token, or none (default: the plan file's, demo)",
    )  # fmt: skip
    add_origin_option(serve, "the chart's own, on 127.0.0.1, localhost and --host")
    feed = add_feed_options(parser)
    feed.add_argument(
        "--history-hours",
        type=float,
        default=24.0,
        metavar="HOURS",
        help="the synthetic market starts with this much history, one tick a second per"
        " instrument (default 24; 0: none); after a restart it fills the time it was down",
    )
    add_interval_option(parser, "candle intervals")
    add_write_buffer_option(parser)
    parser.set_defaults(run=run)


def settings_from(args: argparse.Namespace) -> PlatformSettings:
    """The platform's settings from the parsed command line (raises ValueError when bad)."""
    check_feed_options(args)
    if not 0 <= args.history_hours <= MAX_HISTORY_HOURS:
        raise ValueError(f"--history-hours must be between 0 and {MAX_HISTORY_HOURS}")
    intervals = intervals_of(args)
    return PlatformSettings(
        database_url=args.database_url,
        data_dir=args.data_dir,
        host=args.host,
        http_port=args.http_port,
        ws_port=args.ws_port,
        allowed_origins=origins_of(args) or (),
        auth=_auth_settings(args.anonymous),
        edge=not args.no_edge,
        metrics_port=args.metrics_port,
        edge_metrics_port=args.edge_metrics_port,
        write_buffer=write_buffer_of(args),
        feed=FeedSettings(
            replay=args.replay,
            format=args.format,
            instrument=args.instrument,
            speed=args.speed or None,
            instruments=instruments_of(args),
            rate=args.rate,
            seed=args.seed,
            history=args.history_hours * 3600,
            venue=args.venue,
            symbols=symbols_of(args),
            venue_url=args.venue_url,
            stale_after=args.stale_after,
        ),
        engine=EngineConfig(
            intervals=intervals,
            empty_by_venue=empty_by_venue(),  # each venue's own convention
        ),
    )


def _auth_settings(anonymous: str | None) -> AuthSettings:
    """The auth service's settings: ``mdp up``'s (:func:`~mdp.front.embedded_auth`), or the
    shipped plans with the ``--anonymous`` one as the file has it (ValueError when unknown)."""
    if anonymous is None:
        return embedded_auth()
    settings = AuthSettings()
    try:
        plans = settings.plans.with_anonymous(None if anonymous == "none" else anonymous)
    except PlanError as exc:
        raise ValueError(f"--anonymous: {exc}") from None
    return dataclasses.replace(settings, plans=plans)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"mdp up: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        asyncio.run(_serve(settings))
    except (TickFileError, ValueError) as exc:
        print(f"mdp up: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (PostgresUnavailableError, PostgresServerError, EdgeError, OSError) as exc:
        print(f"mdp up: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ProcessFailed as exc:  # the trading service stopped serving while it ran
        print(f"mdp up: error: trading: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except psycopg.Error as exc:
        print(f"mdp up: error: {database_failure(settings.database_url, exc)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


async def _serve(settings: PlatformSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await Platform(settings, sys.stderr).run(stop)
