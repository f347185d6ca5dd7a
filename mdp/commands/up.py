"""``mdp up``: the whole platform in one process (the embedded mode).

Without DATABASE_URL (or --database-url) it starts a private PostgreSQL from the machine's
binaries, with its data in a folder of its own that later runs reuse. The feed is a synthetic
market unless --replay names a tick file. Ctrl-C or SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.engine import EmptyPolicy, EngineConfig
from core.intervals import DEFAULT_INTERVALS, parse_intervals
from ingest.files import FORMATS, TickFileError
from ingest.synthetic import DEFAULT_INSTRUMENTS
from mdp.embedded import FeedSettings, Platform, PlatformSettings
from storage import PostgresServerError, PostgresUnavailableError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
FILL_VENUES = ("KRAKEN",)
"""Venues whose own candles fill empty intervals; the platform follows them."""


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "up",
        help="run the whole platform in one process",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="PostgreSQL to use (default: $DATABASE_URL, else a private server)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="the private server's folder (default: a per-user state dir)"
    )
    feed = parser.add_argument_group("feed")
    feed.add_argument("--replay", type=Path, metavar="FILE", help="replay a tick file")
    feed.add_argument("--format", choices=FORMATS, help="the replayed file's format")
    feed.add_argument("--instrument", metavar="VENUE:SYMBOL", help="the replayed file's instrument")
    feed.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="replay speed: event seconds per second (default 1; 0: as fast as possible)",
    )
    feed.add_argument(
        "--instruments",
        default=",".join(DEFAULT_INSTRUMENTS),
        help="synthetic instruments, comma-separated",
    )
    feed.add_argument("--rate", type=float, default=20.0, help="synthetic ticks/s per instrument")
    feed.add_argument("--seed", type=int, default=0, help="synthetic seed")
    parser.add_argument(
        "--interval",
        action="append",
        metavar="INTERVAL",
        help="candle intervals, repeatable (default: "
        + " ".join(i.label for i in DEFAULT_INTERVALS)
        + ")",
    )
    parser.set_defaults(run=run)


def settings_from(args: argparse.Namespace) -> PlatformSettings:
    """The platform's settings from the parsed command line (raises ValueError when bad)."""
    if args.speed < 0:
        raise ValueError("--speed must not be negative")
    intervals = parse_intervals(args.interval) if args.interval else DEFAULT_INTERVALS
    instruments = tuple(part.strip() for part in args.instruments.split(",") if part.strip())
    return PlatformSettings(
        database_url=args.database_url,
        data_dir=args.data_dir,
        feed=FeedSettings(
            replay=args.replay,
            format=args.format,
            instrument=args.instrument,
            speed=args.speed or None,
            instruments=instruments,
            rate=args.rate,
            seed=args.seed,
        ),
        engine=EngineConfig(
            intervals=intervals,
            empty_by_venue=MappingProxyType(dict.fromkeys(FILL_VENUES, EmptyPolicy.FILL)),
        ),
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        if settings.feed.replay is not None and not settings.feed.replay.is_file():
            raise ValueError(f"{settings.feed.replay}: no such file")
    except ValueError as exc:
        print(f"mdp up: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        asyncio.run(_serve(settings))
    except (TickFileError, ValueError) as exc:
        print(f"mdp up: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (PostgresUnavailableError, PostgresServerError) as exc:
        print(f"mdp up: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


async def _serve(settings: PlatformSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await Platform(settings, sys.stderr).run(stop)
