"""The feed options ``mdp up`` and ``mdp ingest`` share: a replayed file or the synthetic market."""

from __future__ import annotations

import argparse
from pathlib import Path

from ingest.files import FORMATS
from ingest.synthetic import DEFAULT_INSTRUMENTS


def add_feed_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the ``feed`` option group; a command adds its own options to the group returned."""
    feed = parser.add_argument_group("feed")
    feed.add_argument("--replay", type=Path, metavar="FILE", help="replay a tick file")
    feed.add_argument("--format", choices=FORMATS, help="the file's format (default: detected)")
    feed.add_argument("--instrument", metavar="VENUE:SYMBOL", help="the file's instrument")
    feed.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="event seconds per second (default 1; 0: as fast as possible)",
    )
    feed.add_argument(
        "--instruments",
        default=",".join(DEFAULT_INSTRUMENTS),
        help="synthetic instruments, comma-separated",
    )
    feed.add_argument("--rate", type=float, default=20.0, help="synthetic ticks/s per instrument")
    feed.add_argument("--seed", type=int, default=0, help="synthetic seed")
    return feed


def check_feed_options(args: argparse.Namespace) -> None:
    """Refuse a negative speed or a missing replay file (``ValueError``, for exit code 2)."""
    if args.speed < 0:
        raise ValueError("--speed must not be negative")
    if args.replay is not None and not args.replay.is_file():
        raise ValueError(f"{args.replay}: no such file")


def instruments_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The ``--instruments`` list, split and trimmed."""
    return tuple(part.strip() for part in args.instruments.split(",") if part.strip())
