"""One Kafka broker for the whole test session: ``KAFKA_BOOTSTRAP``, or a local one.

Without ``KAFKA_BOOTSTRAP`` the session runs ``mdp kafka start`` (a single-node KRaft broker
in a temporary folder on a free port; Maven collects its jars the first time) and ``mdp kafka
stop`` at the end. End-to-end tests get the platform's topics deleted and made anew
(:func:`fresh_topics`), so that each starts from empty logs.

Every broker a test starts with :func:`mdp` (``kafka start --data-dir FOLDER``) runs in a
session of its own and would outlive the test run: it is leashed to the test process
(:mod:`tests.support.leash`), so it is stopped by its pid however the run ends, and stopped at
once when ``mdp kafka start`` itself fails or is cut short.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.errors import KafkaError

from streams.kafka.admin import KafkaAdmin, platform_topics
from streams.kafka.launcher import LocalKafka
from streams.kafka.settings import KafkaSettings
from tests.support import leash

PARTITIONS = 4


def mdp(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run ``mdp`` in a process of its own; a broker it starts in a folder is leashed."""
    folder = _broker_folder(args)
    running = LocalKafka(folder).status() if folder is not None and args[1] == "stop" else None
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mdp.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except BaseException:  # cut short (a timeout, an interrupt): what it started goes too
        if folder is not None and args[1] == "start":
            LocalKafka(folder).stop()
        raise
    if folder is not None:
        if args[1] == "start" and (info := LocalKafka(folder).status()) is not None:
            leash.leash(info.pid, str(folder.absolute()))
        elif args[1] == "stop" and running is not None:
            leash.release(running.pid)
    return done


def _broker_folder(args: tuple[str, ...]) -> Path | None:
    """The data folder of ``mdp kafka start|stop --data-dir FOLDER``; None for any other
    command, and for the user's own broker (no folder given), which is never leashed."""
    if args[:1] != ("kafka",) or args[1:2] not in (("start",), ("stop",)):
        return None
    if "--data-dir" not in args:
        return None
    return Path(args[args.index("--data-dir") + 1])


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a broker that tests may create topics and groups on."""
    given = os.environ.get("KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="mdp-test-kafka-"))
    try:
        started = mdp(
            "kafka", "start", "--data-dir", str(folder), "--port", "0",
            "--partitions", str(PARTITIONS),
        )  # fmt: skip
        if started.returncode != 0:
            pytest.fail(f"the Kafka tests need a broker: {started.stderr}{started.stdout}")
        info = LocalKafka(folder).status()
        assert info is not None, started.stdout
        yield info.bootstrap
    finally:
        mdp("kafka", "stop", "--data-dir", str(folder), timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fresh_topics(kafka_bootstrap: str) -> str:
    """The platform's topics, deleted and made anew (empty); returns the bootstrap address."""
    specs = platform_topics(PARTITIONS)
    with KafkaAdmin(KafkaSettings(kafka_bootstrap)) as admin:
        existing = admin.partitions([spec.name for spec in specs])
        if existing:
            admin.delete(list(existing))
        deadline = time.monotonic() + 60
        while True:
            try:
                admin.ensure(specs, strict=True)
                break
            except (KafkaError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    return kafka_bootstrap
