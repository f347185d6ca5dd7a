"""``mdp db``: the database's schema.

``mdp db migrate`` brings the database at ``--database-url`` (default: ``DATABASE_URL``) to this
version's schema; safe to re-run, and to run from two places at once. With neither, it uses the
private server of the embedded platform (started for the occasion, and stopped again unless it
was running already). ``mdp db status`` shows the version and storage mode.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from core.secrets import DatabaseUrl
from mdp.common_options import EXIT_FAILED, add_database_option, database_failure
from storage.migrate import MigrationError, latest_version, migrate, schema_state
from storage.modes import StorageMode
from storage.pg_binaries import PostgresUnavailableError
from storage.pg_server import (
    PRIVATE_DATABASE,
    PostgresServer,
    PostgresServerError,
    default_data_dir,
)


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "db",
        help="set up or inspect the database schema",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    migrate_parser = actions.add_parser(
        "migrate", help="apply the schema migrations (safe to re-run)"
    )
    migrate_parser.add_argument(
        "--mode",
        choices=["auto", *(mode.value for mode in StorageMode)],
        default="auto",
        help="storage mode of a new database (default auto: TimescaleDB when it can be loaded)",
    )
    status_parser = actions.add_parser("status", help="show the schema version and mode")
    for action in (migrate_parser, status_parser):
        add_database_option(action, "the embedded private server")
        action.add_argument(
            "--data-dir",
            type=Path,
            metavar="DIR",
            help=f"the private server's data folder (default {default_data_dir()})",
        )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        with given_or_private(args.database_url, args.data_dir, "mdp db") as url:
            if args.db_command == "migrate":
                _migrate(url, None if args.mode == "auto" else StorageMode(args.mode))
            else:
                _status(url)
    except (MigrationError, PostgresServerError, PostgresUnavailableError) as exc:
        print(f"mdp db: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except psycopg.Error as exc:
        print(f"mdp db: error: {database_failure(args.database_url, exc)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _migrate(url: str, mode: StorageMode | None) -> None:
    report = migrate(url, mode)
    done = f"applied {', '.join(map(str, report.applied))}" if report.applied else "up to date"
    print(f"schema version {report.version}, {report.mode} mode: {done}")
    print(f"mode: {report.reason}")


def _status(url: str) -> None:
    with psycopg.connect(url) as conn:
        state = schema_state(conn)
    mode = "no mode yet" if state.mode is None else f"{state.mode} mode"
    advice = "" if state.version == latest_version() else "; run `mdp db migrate`"
    print(f"schema version {state.version} of {latest_version()}, {mode}{advice}")


@contextlib.contextmanager
def given_or_private(url: DatabaseUrl | None, data_dir: Path | None, who: str) -> Iterator[str]:
    """The URL given (or DATABASE_URL's), else the private server's (running for the block;
    ``who`` says so on stderr)."""
    if url is not None:
        yield url.reveal()
        return
    server = PostgresServer(data_dir)
    server.start()
    print(f"{who}: using the private server in {server.data_dir}", file=sys.stderr)
    try:
        yield server.create_database(PRIVATE_DATABASE)
    finally:
        if server.started_here:
            server.stop()
