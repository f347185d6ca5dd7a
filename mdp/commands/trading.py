"""``mdp trading``: the trading service, and its tools.

``mdp trading serve`` runs the trading service (cluster mode): the REST API under
``/trading/v1`` on ``--host``/``--port``, every request's token checked against the auth
service's key set at ``--jwks-url`` (required: trading is never anonymous); the service resumes
every open order saga at start; the paper venue trades on ``md.ticks`` from ``--bus``; the
outbox publishes the stored events to ``trading.events``; and the read models follow the log.
It stops on Ctrl-C or SIGTERM. See ``docs/trading.md``, "HTTP interface". ``--partition I/N``
(cluster mode with several instances) serves only the accounts ``a`` with ``a % N == I``
(``docs/trading.md``, "Partitions"); the default, ``0/1``, serves every account.
``--followers separate`` leaves the outbox and the projector to ``mdp trading follow``.

``mdp trading follow`` runs the event log's followers apart from the service (cluster mode):
the outbox, publishing the stored events to ``trading.events`` on Kafka (``$KAFKA_BOOTSTRAP``;
never the memory bus: a process of its own has no reader there, and what it published would
count as sent), with ``--partition I/N`` only that partition's accounts (beside ``serve
--partition I/N --followers separate``); and the read models' projector. In the service's
interpreter they took the CPU its orders need (``docs/trading.md``, "Speed"). It stops on
Ctrl-C or SIGTERM, and exits 1 when one of them cannot start (its supervisor starts it again).

``mdp trading rebuild`` replays the trading event log from its first event into fresh read
models (orders, fills, positions, balances) and swaps them in for the live ones in one
transaction: the queries see the old tables until the new ones are complete. The database is
``--database-url`` (default: ``DATABASE_URL``); with neither, the private server of the
embedded platform (started for the occasion, and stopped again unless it was running).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import psycopg

from core.partitions import Partition, PartitionError
from machine import settle_heap
from mdp.admin_options import add_admin_options
from mdp.cluster_options import kafka_bus, say, stop_on_signals
from mdp.commands.db import given_or_private
from mdp.common_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_database_option,
    add_issuer_options,
    add_log_options,
    add_token_options,
    add_wait_option,
    configure_logging,
    database_failure,
    database_start_refused,
    schema_name,
    start_refused,
    token_settings,
)
from mdp.progress import Progress
from mdp.tls_options import add_tls_options, tls_of
from storage.pg_binaries import PostgresUnavailableError
from storage.pg_server import PostgresServerError, default_data_dir
from trading.domain.accounts import AccountError
from trading.domain.orders import IllegalTransition
from trading.readmodels.rebuild import rebuild
from trading.readmodels.tables import DEFAULT_SCHEMA
from trading.store.errors import StoreError, StoreUnavailableError

IN_PROCESS = "in-process"
SEPARATE = "separate"


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
    _add_schema_option(rebuilding)
    rebuilding.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help=f"the private server's data folder (default {default_data_dir()})",
    )
    serving = actions.add_parser(
        "serve", help="run the trading service: its HTTP API, the paper venue, the outbox"
    )
    add_database_option(serving, "the command refuses to start")
    add_wait_option(serving)
    serving.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serving.add_argument("--port", type=int, default=8030, help="port to listen on (8030)")
    serving.add_argument(
        "--bus",
        choices=("memory", "kafka"),
        default="memory",
        help="where md.ticks come from and trading.events go (cluster mode: kafka)",
    )
    _add_schema_option(serving)
    serving.add_argument(
        "--paper-deposits",
        action="store_true",
        help="allow POST /trading/v1/deposits: paper money for the paper venue (off by default)",
    )
    _add_partition_option(serving, "serve only the accounts a with a %% N == I, one of N instances")
    serving.add_argument(
        "--followers",
        choices=(IN_PROCESS, SEPARATE),
        default=IN_PROCESS,
        help="where the outbox and the read models' projector run: in this process (the"
        " default), or separate: in `mdp trading follow` (cluster mode)",
    )
    add_token_options(serving, "required", "request", anonymous=False)
    add_issuer_options(serving)
    add_admin_options(serving)
    add_tls_options(serving)
    following = actions.add_parser(
        "follow",
        help="run the outbox (to trading.events) and the read models' projector, apart from"
        " serve --followers separate",
    )
    add_database_option(following, "the command refuses to start")
    add_wait_option(following)
    _add_schema_option(following)
    _add_partition_option(following, "publish only the events of the accounts a with a %% N == I")
    add_admin_options(following)
    parser.set_defaults(run=run)


def _add_schema_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schema",
        type=schema_name,
        default=DEFAULT_SCHEMA,
        help=f"the read models' schema (default {DEFAULT_SCHEMA})",
    )


def _add_partition_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--partition", type=_partition, default=Partition(), metavar="I/N",
        help=f"{what} (default 0/1: all)",
    )  # fmt: skip


def _partition(text: str) -> Partition:
    try:
        return Partition.parse(text)
    except PartitionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    if args.trading_command == "serve":
        return _serve(args)
    if args.trading_command == "follow":
        return _follow(args)
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


def _serve(args: argparse.Namespace) -> int:
    from streams.memory import MemoryBus
    from trading.process import ProcessSettings, running

    tell = say("mdp trading")
    try:
        tls = tls_of(args)
    except ValueError as exc:
        tell(f"error: {exc}")
        return EXIT_BAD_INPUT
    if args.followers == SEPARATE and args.bus != "kafka":
        tell(
            "error: --followers separate needs --bus kafka: `mdp trading follow` publishes"
            " and projects from another process, which an in-process bus cannot reach"
        )
        return EXIT_BAD_INPUT
    refused = start_refused(args, tell, "trading")
    if refused:
        return refused
    settings = ProcessSettings(
        args.database_url.reveal(), token_settings(args), host=args.host,
        port=args.port, schema=args.schema, deposits=args.paper_deposits,
        partition=args.partition, tls=tls, followers=args.followers == IN_PROCESS,
    )  # fmt: skip

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        bus = kafka_bus(args) if args.bus == "kafka" else MemoryBus()
        async with bus as opened, running(settings, opened, tell, stop) as server:
            owned = "" if args.partition.whole else f" for partition {args.partition}"
            tell(f"serving the trading API on {server.url}/trading/v1{owned}")
            await stop.wait()

    return _run_until_stopped(main, tell, " (it resumes from the store)")


def _follow(args: argparse.Namespace) -> int:
    from trading.followers import FollowSettings, following

    tell = say("mdp trading")
    refused = database_start_refused(args, tell)
    if refused:
        return refused
    settings = FollowSettings(
        args.database_url.reveal(), schema=args.schema, partition=args.partition
    )

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        async with kafka_bus(args) as opened, following(settings, opened, stop):
            owned = "" if args.partition.whole else f" of partition {args.partition}"
            tell(f"following the event log: the outbox{owned} and the read models ({args.schema})")
            await stop.wait()

    return _run_until_stopped(main, tell, "")


def _run_until_stopped(
    main: Callable[[], Coroutine[Any, Any, None]], tell: Callable[[str], None], resumes: str
) -> int:
    """Run ``main`` to its end: 0; 1 when it cannot listen or a part of it failed
    (``ProcessFailed``: the supervisor restarts the process), ``tell`` having said why."""
    from trading.watch import ProcessFailed

    try:
        settle_heap()  # the modules out of every later collection: short pauses
        asyncio.run(main())
    except OSError as exc:
        tell(f"error: {exc}")
        return EXIT_FAILED
    except ProcessFailed as exc:
        tell(f"error: {exc}; exiting so that the process is restarted{resumes}")
        return EXIT_FAILED
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m mdp.commands.trading``: the same command without the ``mdp`` entry point."""
    parser = argparse.ArgumentParser(prog="mdp")
    add_parser(parser.add_subparsers(dest="command"))
    add_log_options(parser)
    args = parser.parse_args(["trading", *(argv or sys.argv[1:])])
    configure_logging(args)
    return int(run(args))


if __name__ == "__main__":
    sys.exit(main())
