"""``mdp kafka``: a local Apache Kafka broker for development, and the platform's topics.

``mdp kafka start`` collects the broker's jars from Maven Central with Maven the first time
(cached in ``~/.cache/ganntec-mdp``), formats a single-node KRaft log folder, starts the broker
on 127.0.0.1 in the background, waits until it answers and creates the platform's topics.
``mdp kafka stop`` stops it, ``mdp kafka status`` tells whether it runs, ``mdp kafka topics``
creates the topics on any cluster (``--bootstrap``) and lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from mdp.cluster_options import (
    add_kafka_options,
    kafka_settings,
    say,
)
from mdp.common_options import EXIT_BAD_INPUT, EXIT_FAILED
from streams.kafka.admin import KafkaAdmin, TopicMismatchError, platform_topics
from streams.kafka.bus import connect_admin
from streams.kafka.jars import KafkaSetupError
from streams.kafka.launcher import DEFAULT_PORT, LocalKafka, default_data_dir, remembered_port
from streams.kafka.retry import BrokerUnavailableError
from streams.kafka.settings import KafkaSettings

EXIT_NOT_RUNNING = 3
_NAME = "mdp kafka"


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "kafka",
        help="run a local Kafka broker; create the platform's topics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="kafka_command", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start the local broker and create the topics")
    start.add_argument(
        "--port",
        type=int,
        help=f"client port (default: the folder's last one, else {DEFAULT_PORT}; 0: the"
        " folder's last one if free, else a free one)",
    )
    start.add_argument("--heap", type=int, default=512, metavar="MIB", help="JVM heap (512)")
    stop = actions.add_parser("stop", help="stop the local broker")
    status = actions.add_parser("status", help="tell whether the local broker runs")
    for action in (start, stop, status):
        action.add_argument(
            "--data-dir",
            type=Path,
            metavar="DIR",
            help=f"the broker's folder (default {default_data_dir()})",
        )
    topics = actions.add_parser("topics", help="create the platform's topics; list them")
    add_kafka_options(topics)
    for action in (start, topics):
        action.add_argument(
            "--partitions",
            type=int,
            default=8,
            help="partitions of md.ticks and md.candles: the most workers that share the"
            " load (default 8)",
        )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.kafka_command == "start":
            return _start(args)
        if args.kafka_command == "stop":
            stopped = LocalKafka(args.data_dir).stop()
            print("stopped" if stopped else "not running")
            return 0
        if args.kafka_command == "status":
            return _status(args)
        return _topics(kafka_settings(args, "mdp-admin"), args.partitions)
    except ValueError as exc:
        say(_NAME)(f"error: {exc}")
        return EXIT_BAD_INPUT
    except (KafkaSetupError, BrokerUnavailableError, TopicMismatchError) as exc:
        say(_NAME)(f"error: {exc}")
        return EXIT_FAILED


def _start(args: argparse.Namespace) -> int:
    port: int | None = args.port
    if port is None:  # clients were told this address: keep it
        port = remembered_port(args.data_dir) or DEFAULT_PORT
    if not 0 <= port < 65536:
        raise ValueError(f"--port must be a TCP port, got {port}")
    broker = LocalKafka(args.data_dir, port=port or None, heap_mb=args.heap, say=say(_NAME))
    info = broker.start()
    print(f"Kafka is running (pid {info.pid}) at {info.bootstrap}; logs: {broker.log_file}")
    _topics(KafkaSettings(info.bootstrap, client_id="mdp-admin"), args.partitions)
    if info.bootstrap != f"127.0.0.1:{DEFAULT_PORT}":
        print(f"export KAFKA_BOOTSTRAP={info.bootstrap}")
    return 0


def _status(args: argparse.Namespace) -> int:
    info = LocalKafka(args.data_dir).status()
    if info is None:
        print("not running")
        return EXIT_NOT_RUNNING
    print(f"running (pid {info.pid}) at {info.bootstrap}, cluster {info.cluster_id}")
    return 0


def _topics(settings: KafkaSettings, partitions: int) -> int:
    specs = platform_topics(partitions)

    async def connect() -> KafkaAdmin:
        admin, _cluster = await connect_admin(settings, say(_NAME))
        return admin

    with asyncio.run(connect()) as admin:
        created = admin.ensure(specs)
        counts = admin.partitions([spec.name for spec in specs])
    for spec in specs:
        state = "created" if spec.name in created else "exists"
        print(f"{spec.name:<20} {counts.get(spec.name, 0):>3} partitions  ({state})")
    if counts.get(specs[0].name) != counts.get(specs[-1].name):
        print(
            f"{_NAME}: warning: md.ticks and the step journal differ in partitions;"
            " mdp worker refuses to run on them",
            file=sys.stderr,
        )
    return 0
