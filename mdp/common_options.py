"""Options several ``mdp`` commands share, each defined once: the candle intervals and the
database URL (read from the environment here, at the edge, and nowhere else)."""

from __future__ import annotations

import argparse
import os

from core.intervals import DEFAULT_INTERVALS, Interval, parse_intervals

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
