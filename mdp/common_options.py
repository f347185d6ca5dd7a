"""Options several ``mdp`` commands share, each defined once: the candle intervals and the
database URL (read from the environment here, at the edge, and nowhere else)."""

from __future__ import annotations

import argparse
import os

from core.intervals import DEFAULT_INTERVALS, Interval, parse_intervals
from storage.backlog import DEFAULT_MAX_BYTES

DEFAULT_INTERVAL_LABELS = " ".join(i.label for i in DEFAULT_INTERVALS)


def add_interval_option(parser: argparse._ActionsContainer, what: str, after: str = "") -> None:
    """``--interval``, repeatable; ``what`` starts its help, ``after`` ends it."""
    parser.add_argument(
        "--interval",
        action="append",
        metavar="INTERVAL",
        help=f"{what}, repeatable (default: {DEFAULT_INTERVAL_LABELS}){after}",
    )


def intervals_of(args: argparse.Namespace) -> tuple[Interval, ...]:
    """The ``--interval`` values parsed (``ValueError`` names a bad one), or the defaults."""
    return tuple(parse_intervals(args.interval)) if args.interval else tuple(DEFAULT_INTERVALS)


def add_database_option(parser: argparse._ActionsContainer, otherwise: str) -> None:
    """``--database-url``, by default ``$DATABASE_URL``; ``otherwise`` says what runs without."""
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=os.environ.get("DATABASE_URL"),
        help=f"PostgreSQL (default: $DATABASE_URL; with neither: {otherwise})",
    )


def add_write_buffer_option(parser: argparse._ActionsContainer) -> None:
    """``--write-buffer MIB``: what the storage writer holds while the database is away."""
    parser.add_argument(
        "--write-buffer",
        type=float,
        default=DEFAULT_MAX_BYTES / 2**20,
        metavar="MIB",
        help="records read but not yet stored that the writer holds while the database is"
        f" unavailable, in MiB (default {DEFAULT_MAX_BYTES // 2**20}); beyond it the feed"
        " waits (backpressure), nothing is dropped",
    )


def write_buffer_of(args: argparse.Namespace) -> int:
    """``--write-buffer`` in bytes (``ValueError`` when not positive)."""
    if not args.write_buffer > 0:
        raise ValueError("--write-buffer must be positive")
    return int(args.write_buffer * 2**20)
