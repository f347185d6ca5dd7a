"""``--wait SECONDS``: how long a service waits at start for a database that is not there yet.

A service started beside its database (a compose file, a machine booting) often comes up
first. Instead of one attempt and exit 1, the commands that need the database at start
(``mdp api``, ``mdp main-api``, ``mdp trading serve``, ``mdp auth serve``, ``mdp alerts
evaluate``) try again with backoff for up to ``--wait`` seconds (default 60; 0: one attempt),
telling the wait in one line when it begins and one every 30 s
(:func:`~streams.retry.until_available`); then the last error, in the one line of
:func:`~mdp.common_options.database_failure`, and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Final

import psycopg

from mdp.common_options import database_failure

DEFAULT_WAIT_S: Final = 60.0
CONNECT_TIMEOUT_S: Final = 10
"""How long one attempt may take (a host that does not answer at all)."""


def add_wait_option(parser: argparse._ActionsContainer) -> None:
    """``--wait SECONDS`` (checked by :func:`check_wait`)."""
    parser.add_argument(
        "--wait", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS",
        help="how long to keep trying the database at start (default 60; 0: fail at once)",
    )  # fmt: skip


def check_wait(args: argparse.Namespace) -> None:
    """``ValueError`` for a ``--wait`` below 0."""
    if not args.wait >= 0:
        raise ValueError("--wait must be 0 or more")


def wait_for_database(args: argparse.Namespace, tell: Callable[[str], object]) -> None:
    """Return once the database of ``--database-url`` takes a connection, trying for up to
    ``--wait`` seconds; after that, the last ``psycopg.OperationalError`` is raised. The
    wait is told on ``tell``, the password masked. Ctrl-C ends it (``KeyboardInterrupt``)."""
    from streams.retry import until_available

    url = args.database_url.reveal()

    async def connect() -> None:
        conn = await psycopg.AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_S)
        await conn.close()

    asyncio.run(
        until_available(
            connect,
            "the database",
            within_s=args.wait,
            retry_on=(psycopg.OperationalError,),
            describe=lambda exc: database_failure(args.database_url, exc),
            then=f"trying again for up to {args.wait:g} s",
            say=tell,
        )
    )
