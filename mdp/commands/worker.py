"""``mdp worker``: a candle worker of cluster mode on Kafka (on the batch consumer by default,
or a Faust app: ``--consumer faust``).

Workers of one group (``--group``) split the partitions of ``md.ticks``: start as many as
there are partitions at most, on any machines. Each runs the candle engine on its partitions
and publishes to ``md.candles`` (rejects to ``md.ticks.rejected``). A worker killed at any
moment and started again (or another taking its partitions) carries on from the last
checkpoint and its step journal and ends with the same candles as a run without the crash.

Checkpoints go to the database at ``--database-url`` (default ``$DATABASE_URL``); without
one, recovery replays the partition's journal from its start (fine for development).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from typing import Any

from core.engine import EngineConfig
from core.intervals import NS_PER_SECOND
from core.secrets import DatabaseUrl
from core.topics import CANDLES, TICKS, TICKS_REJECTED
from ingest.venues import empty_by_venue
from machine import settle_heap, state_dir
from mdp.admin_options import (
    add_admin_options,
    add_readiness_options,
    check_readiness_options,
    consumer_checks,
    ready_when,
)
from mdp.cluster_options import (
    add_kafka_options,
    kafka_settings,
    say,
)
from mdp.common_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_database_option,
    add_interval_option,
    intervals_of,
)
from streams.checkpoints import CheckpointStore
from streams.engine_runner import DEFAULT_GROUP
from streams.kafka.admin import STEPS
from streams.kafka.bus import connect_admin
from streams.kafka.engine_worker import CONSUMERS, DEFAULT_CONSUMER, WorkerSettings
from streams.kafka.retry import BrokerUnavailableError
from telemetry.logs import installed

_NAME = "mdp worker"
FAUST_PROTOCOL = "faust"
"""The name of Faust's partition assignor: the group protocol of Faust workers."""
NEEDED = (TICKS, STEPS, CANDLES, TICKS_REJECTED)


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "worker",
        help="run a candle worker on Kafka (cluster mode)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_kafka_options(parser)
    parser.add_argument("--group", default=DEFAULT_GROUP, help=f"group (default {DEFAULT_GROUP})")
    add_database_option(parser, "no checkpoints: the journal only")
    add_interval_option(parser, "candle intervals")
    parser.add_argument(
        "--throttle",
        type=float,
        default=250.0,
        metavar="MS",
        help="least time between two updates of one open candle (default 250; 0: every batch)",
    )
    parser.add_argument(
        "--checkpoint-every", type=float, default=10.0, metavar="SECONDS", help="default 10"
    )
    parser.add_argument(
        "--consumer",
        choices=CONSUMERS,
        default=DEFAULT_CONSUMER,
        help=f"how md.ticks is read (default {DEFAULT_CONSUMER}): batch, whole polled batches on"
        " the bus's own consumer, several times cheaper per record; or faust, Faust's agent, one"
        ' event at a time (docs/cluster.md, "Which consumer to run"). The workers of one'
        " --group must all run the same one",
    )
    parser.add_argument(
        "--clock-offset", type=float, default=0.0, help=argparse.SUPPRESS
    )  # tests: a wall clock ahead closes replayed candles at once
    add_admin_options(parser)
    add_readiness_options(parser)
    parser.set_defaults(run=run, log_level="info")  # its partitions' recoveries are told


def settings_from(args: argparse.Namespace) -> WorkerSettings:
    intervals = intervals_of(args)
    if args.throttle < 0:
        raise ValueError("--throttle must not be negative")
    if args.checkpoint_every <= 0:
        raise ValueError("--checkpoint-every must be positive")
    if not args.group:
        raise ValueError("--group must not be empty")
    return WorkerSettings(
        kafka=kafka_settings(args, f"mdp-worker-{args.group}"),
        engine=EngineConfig(
            intervals=intervals,
            empty_by_venue=empty_by_venue(),  # each venue's own convention
            throttle_ns=round(args.throttle * 1_000_000),
        ),
        group=args.group,
        checkpoint_every=args.checkpoint_every,
        clock_offset_ns=round(args.clock_offset * NS_PER_SECOND),
    )


def run(args: argparse.Namespace) -> int:
    tell = say(_NAME)
    try:
        settings = settings_from(args)
        check_readiness_options(args)
    except ValueError as exc:
        tell(f"error: {exc}")
        return EXIT_BAD_INPUT
    with ready_when(consumer_checks(args)):  # /readyz: the bus and the lag (the timer's)
        try:
            asyncio.run(_check_cluster(settings, args.consumer))
        except (BrokerUnavailableError, RuntimeError) as exc:
            tell(f"error: {exc}")
            return EXIT_FAILED
        if args.consumer == "faust":
            return _run_faust(settings, args.database_url, args.log_level)
        return _run_batch(settings, args.database_url)


async def _check_cluster(settings: WorkerSettings, consumer: str) -> None:
    """Wait for the broker (with backoff), then check the topics the worker needs and, for
    Faust, that its group's members are Faust's too: a Faust worker that cannot join its group
    logs the broker's error once and then waits for ever (the batch consumer's join says why and
    ends: :func:`_run_batch`)."""
    admin, cluster = await connect_admin(settings.kafka, say(_NAME))
    with admin:
        counts = await asyncio.to_thread(admin.partitions, [*NEEDED])
        protocol = None
        if consumer == "faust":  # Faust's join waits for ever in a group of the batch consumer's
            protocol = await asyncio.to_thread(admin.group_protocol, settings.group)
    missing = [name for name in NEEDED if name not in counts]
    if missing:
        raise RuntimeError(
            f"the topics {', '.join(missing)} do not exist: run `mdp kafka topics` first"
        )
    if counts[TICKS] != counts[STEPS]:
        raise RuntimeError(
            f"{TICKS} has {counts[TICKS]} partitions but {STEPS} {counts[STEPS]}:"
            " they must be equal"
        )
    if consumer == "faust" and protocol not in (None, FAUST_PROTOCOL):
        raise RuntimeError(
            f"the members of group {settings.group} do not run Faust (their assignor is"
            f" {protocol}: batch-consumer workers, the default): the workers of one --group"
            " must all run the same --consumer"
        )
    say(_NAME)(f"cluster {cluster}: {counts[TICKS]} partitions of {TICKS}")


def _checkpoints(database_url: DatabaseUrl | None) -> Callable[[], CheckpointStore | None]:
    def checkpoints() -> CheckpointStore | None:
        if database_url is None:
            say(_NAME)("no --database-url: recovery replays the journal from its start")
            return None
        from storage.checkpoints import PostgresCheckpoints

        return PostgresCheckpoints(database_url.reveal())

    return checkpoints


def _run_batch(settings: WorkerSettings, database_url: DatabaseUrl | None) -> int:
    """The worker on the bus's own consumer until SIGINT or SIGTERM; a group it cannot join
    is told in a line (with the likely reason) and ends it with :data:`EXIT_FAILED`."""
    from aiokafka.errors import InconsistentGroupProtocolError

    from streams.kafka.batch_worker import BatchWorker
    from streams.kafka.bus import GroupJoinError
    from streams.kafka.log_limits import limit_client_logs

    limit_client_logs()  # a broker outage: told once, then every 30 s, not per retry

    async def main() -> None:
        worker = BatchWorker(settings, _checkpoints(database_url))
        settle_heap()  # the modules out of every later collection: short pauses
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, worker.stop, f"signal {signum.name}")
        await worker.run()

    try:
        asyncio.run(main())
    except GroupJoinError as exc:
        tell = say(_NAME)
        tell(f"error: {exc}")
        if isinstance(exc.__cause__, InconsistentGroupProtocolError):
            tell(
                f"the members of group {settings.group} are Faust workers: the workers of one"
                " --group must all run the same --consumer"
            )
        return EXIT_FAILED
    return 0


def _run_faust(settings: WorkerSettings, database_url: DatabaseUrl | None, log_level: str) -> int:
    import faust

    from streams.kafka.faust_app import build_app
    from streams.kafka.log_limits import limit_client_logs

    checkpoints = _checkpoints(database_url)

    datadir = state_dir("faust", settings.group)
    datadir.mkdir(parents=True, exist_ok=True)
    app, _runtime = build_app(settings, checkpoints, datadir)
    limit_client_logs()  # a broker outage: told once, then every 30 s, not per retry
    # Faust's worker replaces the root logger's handlers when it starts: it is handed ours
    # back (telemetry.logs, set up by `mdp`), and its own configuration only sets the level.
    keep = {"version": 1, "incremental": True, "root": {"level": log_level.upper()}}
    worker = faust.Worker(
        app, loglevel=log_level, quiet=True, redirect_stdouts=False, logging_config=keep
    )
    worker.loghandlers = installed()
    settle_heap()  # the modules out of every later collection: short pauses
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int | None) else EXIT_FAILED
    return 0
