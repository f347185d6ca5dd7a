"""``mdp trading``: the trading service's tools.

``mdp trading rebuild`` replays the trading event log from its first event into fresh read
models (orders, fills, positions, balances) and swaps them in for the live ones in one
transaction: the queries see the old tables until the new ones are complete. The database is
``--database-url`` (default: ``DATABASE_URL``); with neither, the private server of the
embedded platform (started for the occasion, and stopped again unless it was running).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import psycopg

from mdp.commands.db import given_or_private
from mdp.common_options import add_database_option, database_failure
from mdp.progress import Progress
from storage.pg_binaries import PostgresUnavailableError
from storage.pg_server import PostgresServerError, default_data_dir
from trading.domain.accounts import AccountError
from trading.domain.orders import IllegalTransition
from trading.readmodels.rebuild import rebuild
from trading.readmodels.tables import DEFAULT_SCHEMA
from trading.store.errors import StoreError, StoreUnavailableError

EXIT_FAILED = 1


def _schema(text: str) -> str:
    if not text.isidentifier() or len(text) > 50:
        raise argparse.ArgumentTypeError("a schema name is an identifier of at most 50 characters")
    return text


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "trading",
        help="the trading service's tools (rebuild the read models)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="trading_command", metavar="ACTION", required=True)
    rebuilding = actions.add_parser(
        "rebuild", help="replay the event log into fresh read models and swap them in"
    )
    add_database_option(rebuilding, "the embedded private server")
    rebuilding.add_argument(
        "--schema",
        type=_schema,
        default=DEFAULT_SCHEMA,
        help=f"the read models' schema (default {DEFAULT_SCHEMA})",
    )
    rebuilding.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help=f"the private server's data folder (default {default_data_dir()})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    progress = Progress(sys.stderr)

    def told(position: int, last: int) -> None:
        progress.update(f"mdp trading: replayed {position:,} of {last:,} events")

    try:
        with given_or_private(args.database_url, args.data_dir, "mdp trading") as url:
            done = rebuild(url, args.schema, told)
    except (PostgresServerError, PostgresUnavailableError) as exc:
        print(f"mdp trading: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (psycopg.Error, StoreUnavailableError) as exc:
        print(f"mdp trading: error: {database_failure(args.database_url, exc)}", file=sys.stderr)
        return EXIT_FAILED
    except (StoreError, IllegalTransition, AccountError) as exc:
        print(
            f"mdp trading: error: the log holds an event the read models refuse: {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    progress.done(
        f"mdp trading: read models in schema {done.schema} rebuilt up to event"
        f" {done.position:,} in {progress.elapsed:.1f}s"
    )
    return 0
