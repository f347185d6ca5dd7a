"""``mdp writer``: ``md.ticks``, ``md.candles`` and ``md.ticks.rejected`` from Kafka into the
database, in batches.

Each batch is written in one transaction together with the group's offsets (kept per Kafka
cluster), and committed on Kafka only after that: a writer killed at any moment and started
again stores every tick once and every candle in its highest revision. Several writers of one
group (``--group``) split the partitions.

While the database is unavailable the writer keeps running: it holds what it read (up to
``--write-buffer`` MiB, then it stops reading and Kafka keeps the rest), retries with backoff,
and commits nothing on Kafka that is not stored. SIGTERM or Ctrl-C stops it within seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import psycopg

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
    add_write_buffer_option,
    database_failure,
    write_buffer_of,
)
from mdp.status import storage_state
from storage import PostgresStore, SchemaNotReadyError
from storage.unavailable import DatabaseUnavailableError
from storage.writer import DEFAULT_GROUP, StorageWriter, WriterStats
from streams.kafka.bus import KafkaBus
from streams.kafka.retry import BrokerUnavailableError
from streams.kafka.settings import KafkaSettings

_NAME = "mdp writer"


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "writer",
        help="store ticks, candles and rejects from Kafka in the database (cluster mode)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_kafka_options(parser)
    add_database_option(parser, "the command refuses to start")
    parser.add_argument("--group", default=DEFAULT_GROUP, help=f"group (default {DEFAULT_GROUP})")
    parser.add_argument(
        "--batch", type=int, default=2000, metavar="N", help="most records per write (2000)"
    )
    parser.add_argument("--migrate", action="store_true", help="bring the schema up to date first")
    add_write_buffer_option(parser)
    parser.add_argument(
        "--status-every", type=float, default=10.0, metavar="SECONDS", help="status line period"
    )
    add_admin_options(parser)
    add_readiness_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    tell = say(_NAME)
    try:
        settings = kafka_settings(args, f"mdp-writer-{args.group}")
        if not args.database_url:
            raise ValueError("give --database-url (or set DATABASE_URL)")
        if args.batch < 1:
            raise ValueError("--batch must be positive")
        args.buffer = write_buffer_of(args)
        check_readiness_options(args)
    except ValueError as exc:
        tell(f"error: {exc}")
        return EXIT_BAD_INPUT
    try:
        asyncio.run(_write(args, settings))
    except (BrokerUnavailableError, SchemaNotReadyError) as exc:
        tell(f"error: {exc}")
        return EXIT_FAILED
    except (psycopg.Error, DatabaseUnavailableError) as exc:
        tell(f"error: {database_failure(args.database_url, exc)}")
        return EXIT_FAILED
    return 0


async def _write(args: argparse.Namespace, settings: KafkaSettings) -> None:
    tell = say(_NAME)
    stop = asyncio.Event()
    stop_on_signals(stop)
    writer: StorageWriter | None = None

    def database() -> str | None:
        if writer is None:
            return "starting"
        return writer.database_check()

    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(ready_when({"database": database, **consumer_checks(args)}))
        store = await stack.enter_async_context(
            PostgresStore.open(args.database_url.reveal(), migrate=args.migrate)
        )
        bus = await stack.enter_async_context(KafkaBus(settings, create_topics=False, say=tell))
        writer = StorageWriter(
            bus, store, group=args.group, max_records=args.batch, buffer_bytes=args.buffer
        )
        writing = asyncio.create_task(writer.run(), name="writer")
        stopping = asyncio.create_task(stop.wait())
        reporting = asyncio.create_task(_report(writer.stats, args.status_every, tell))
        tell(f"writing group {args.group} of cluster {bus.cluster_id}")
        try:
            await asyncio.wait([writing, stopping], return_when=asyncio.FIRST_COMPLETED)
            writer.stop()
            if not (await asyncio.wait([writing], timeout=STOP_GRACE))[0]:
                writing.cancel()  # stuck in a call: what it wrote is not committed on Kafka
            with contextlib.suppress(asyncio.CancelledError):
                await writing
        finally:
            for task in (stopping, reporting):
                task.cancel()
            tell(_status(writer.stats))


STOP_GRACE = 2.0
"""Seconds a stopping writer may take to finish its current call before it is cancelled."""


async def _report(stats: WriterStats, every: float, tell: Callable[[str], None]) -> None:
    while True:
        await asyncio.sleep(every)
        tell(_status(stats))


def _status(s: WriterStats) -> str:
    line = (
        f"stored {s.ticks:,} ticks, {s.candles:,} candle updates,"
        f" {s.rejections:,} rejects in {s.writes:,} writes"
    )
    storage = storage_state(s)
    if s.buffer_full:
        storage += ", buffer full: reading paused (Kafka keeps the rest)"
    return f"{line}; {storage.lstrip(', ')}" if storage else line
