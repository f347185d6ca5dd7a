"""``mdp alerts``: the price alerts' stream side.

``mdp alerts evaluate`` runs the alert evaluator (cluster mode): it consumes ``md.ticks`` and
``md.candles`` from Kafka (``--bootstrap``, default ``$KAFKA_BOOTSTRAP``) in the consumer group
``--group``, fires the main API's alerts (its tables in ``--schema`` of ``--database-url``,
default ``DATABASE_URL``; made if missing), records each firing once with its state and
offsets, and publishes the firings on ``alerts.events``. Several instances of one group split
the partitions; a partition's state moves with it. At start it waits for the database for up
to ``--wait`` seconds (default 60), trying again with backoff, then makes its tables (exit 1
when the database still cannot be used, so a supervisor starts it again); once running, while
the database or the broker is away it retries with backoff. It stops on Ctrl-C or SIGTERM. See
``docs/main-api.md``, "The evaluator".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from main_api.alerts.processing import EVALUATOR_GROUP
from main_api.alerts.runner import DEFAULT_RECORDS, MAX_RECORDS
from main_api.settings import DEFAULT_SCHEMA
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
    stop_on_signals,
)
from mdp.common_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_database_option,
    add_log_options,
    add_wait_option,
    check_wait,
    configure_logging,
    database_failure,
    schema_name,
)

if TYPE_CHECKING:
    from main_api.alerts.runner import EvaluatorService, EvaluatorSettings
    from main_api.store import MainStore
    from streams.kafka.settings import KafkaSettings

_NAME = "mdp alerts evaluate"


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "alerts",
        help="the price alerts' evaluator (cluster mode)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    evaluate = actions.add_parser(
        "evaluate",
        help="fire the alerts on md.ticks and md.candles; firings to alerts.events",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_kafka_options(evaluate)
    add_database_option(evaluate, "the command refuses to start")
    evaluate.add_argument(
        "--schema", type=schema_name, default=DEFAULT_SCHEMA,
        help=f"the main API's schema (default {DEFAULT_SCHEMA})",
    )  # fmt: skip
    evaluate.add_argument(
        "--group", default=EVALUATOR_GROUP, help=f"consumer group (default {EVALUATOR_GROUP})"
    )
    evaluate.add_argument(
        "--start", choices=("earliest", "latest"), default="earliest",
        help="where a group without committed offsets starts (default earliest)",
    )  # fmt: skip
    evaluate.add_argument(
        "--batch", type=int, default=DEFAULT_RECORDS, metavar="N",
        help=f"most records per round, 1 to {MAX_RECORDS:,} (default {DEFAULT_RECORDS})",
    )  # fmt: skip
    add_wait_option(evaluate)
    evaluate.add_argument(
        "--status-every", type=float, default=10.0, metavar="SECONDS", help="status line period"
    )
    add_admin_options(evaluate)
    add_readiness_options(evaluate)
    evaluate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from main_api.alerts.runner import EvaluatorSettings

    tell = say(_NAME)
    try:
        kafka = kafka_settings(args, f"mdp-alerts-{args.group}")
        if not args.database_url:
            raise ValueError("give --database-url (or set DATABASE_URL)")
        if not 1 <= args.batch <= MAX_RECORDS:
            raise ValueError(f"--batch must be 1 to {MAX_RECORDS:,}")
        check_wait(args)
        if args.status_every <= 0:
            raise ValueError("--status-every must be positive")
        settings = EvaluatorSettings(group=args.group, start=args.start, max_records=args.batch)
        check_readiness_options(args)
    except ValueError as exc:
        tell(f"error: {exc}")
        return EXIT_BAD_INPUT
    from main_api.errors import StoreUnavailableError
    from streams.kafka.retry import BrokerUnavailableError

    try:
        asyncio.run(_evaluate(args, kafka, settings))
    except BrokerUnavailableError as exc:
        tell(f"error: {exc}")
        return EXIT_FAILED
    except (psycopg.Error, StoreUnavailableError) as exc:
        tell(f"error: {database_failure(args.database_url, exc)}")
        return EXIT_FAILED
    return 0


async def _evaluate(
    args: argparse.Namespace, kafka: KafkaSettings, settings: EvaluatorSettings
) -> None:
    from main_api.alerts.runner import EvaluatorService
    from streams.kafka.bus import KafkaBus

    tell = say(_NAME)
    stop = asyncio.Event()
    stop_on_signals(stop)
    url = args.database_url.reveal()
    with ready_when(consumer_checks(args)):  # /readyz: the bus and the lag
        async with contextlib.AsyncExitStack() as stack:
            store = await _open_store(stack, args, stop, tell)
            if store is None:
                return
            bus = await stack.enter_async_context(KafkaBus(kafka, create_topics=False, say=tell))
            service = EvaluatorService(store, bus, url, settings)
            tell(f"evaluating alerts in group {settings.group} of cluster {bus.cluster_id}")
            reporting = asyncio.create_task(_report(service, args.status_every, tell))
            try:
                await service.run(stop)
            finally:
                reporting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporting
                tell(status_line(service))


async def _open_store(
    stack: contextlib.AsyncExitStack,
    args: argparse.Namespace,
    stop: asyncio.Event,
    tell: Callable[[str], None],
) -> MainStore | None:
    """The main API's store, opened in ``stack``; while the database cannot be reached, tried
    again with backoff for up to ``--wait`` seconds (then the last error is raised), the
    outage told on ``tell`` (:func:`~streams.retry.until_available`). None when stopped
    meanwhile."""
    from main_api.errors import StoreUnavailableError
    from main_api.store import MainStore
    from streams.retry import StoppedError, until_available

    url = args.database_url.reveal()
    try:
        return await until_available(
            lambda: stack.enter_async_context(MainStore.open(url, args.schema)),
            "the database",
            within_s=args.wait,
            retry_on=(psycopg.OperationalError, StoreUnavailableError),
            describe=lambda exc: database_failure(args.database_url, exc),
            then=f"trying again for up to {args.wait:g} s",
            say=tell,
            stop=stop,
        )
    except StoppedError:
        return None


def status_line(service: EvaluatorService) -> str:
    """The evaluator's totals in one line."""
    s = service.stats
    return (
        f"{s.recorded:,} firings recorded ({s.fired:,} fired, repeats included) in"
        f" {s.rounds:,} rounds; {len(service.hook.states) if service.hook else 0} partitions"
        f" held; {s.replayed:,} records replayed; {s.restarts:,} restarts;"
        f" {service.relay.published:,} published"
    )


async def _report(service: EvaluatorService, every: float, tell: Callable[[str], None]) -> None:
    while True:
        await asyncio.sleep(every)
        tell(status_line(service))


def main(argv: list[str] | None = None) -> int:
    """``python -m mdp.commands.alerts``: the same command without the ``mdp`` entry point."""
    parser = argparse.ArgumentParser(prog="mdp")
    add_parser(parser.add_subparsers(dest="command"))
    add_log_options(parser)
    args = parser.parse_args(["alerts", *(argv or sys.argv[1:])])
    configure_logging(args)
    return int(run(args))


if __name__ == "__main__":
    sys.exit(main())
