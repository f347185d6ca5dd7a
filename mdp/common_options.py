"""Options several ``mdp`` commands share, each defined once: the candle intervals and the
database URL (read from the environment here, at the edge, and nowhere else; held as a
:class:`~core.secrets.DatabaseUrl`, which never prints its password)."""

from __future__ import annotations

import argparse
import os

from core.intervals import DEFAULT_INTERVALS, Interval, parse_intervals
from core.secrets import DatabaseUrl

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


def database_failure(url: DatabaseUrl | None, exc: BaseException) -> str:
    """One line for a database that cannot be used: which one (password masked), and why."""
    where = "the private database" if url is None else f"the database at {url}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot use {where}: {first}"


def _database_url(text: str) -> DatabaseUrl | None:
    """An empty ``--database-url ''`` (or ``DATABASE_URL=``) means none, as if not given."""
    return DatabaseUrl(text) if text.strip() else None


def add_database_option(parser: argparse._ActionsContainer, otherwise: str) -> None:
    """``--database-url``, by default ``$DATABASE_URL``; ``otherwise`` says what runs without."""
    parser.add_argument(
        "--database-url",
        metavar="URL",
        type=_database_url,
        default=os.environ.get("DATABASE_URL"),
        help=f"PostgreSQL (default: $DATABASE_URL; with neither: {otherwise})",
    )
