"""A broker stopped for a few seconds under a running worker (either consumer): the worker says
so once, its clients' retry errors stay few, it says once that the broker is back, it goes on,
and SIGTERM then ends it with 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.topics import CANDLES
from streams.kafka.launcher import LocalKafka
from tests.streams.kafka.cluster import Service, read_topic, wait_until
from tests.streams.kafka.conftest import mdp

OUTAGE = 5.0
MOST_LINES = 40  # each kind of client error at most once per 30 s; ~1,700 lines without it


@pytest.mark.parametrize("consumer", ["faust", "batch"])
def test_a_broker_outage_is_logged_once_then_at_a_bounded_rate(
    tmp_path: Path, consumer: str
) -> None:
    kafka = ["--data-dir", str(tmp_path / "kafka")]
    started = mdp("kafka", "start", *kafka, "--port", "0", "--partitions", "1")
    assert started.returncode == 0, started.stderr + started.stdout
    worker = None
    try:
        info = LocalKafka(tmp_path / "kafka").status()
        assert info is not None
        env = os.environ | {
            "KAFKA_BOOTSTRAP": info.bootstrap,
            "XDG_STATE_HOME": str(tmp_path / "state"),
        }
        worker = Service(
            "worker",
            ["worker", "--group", "g", "--database-url", "", "--interval", "1s",
             "--consumer", consumer],
            tmp_path, env,
        )  # fmt: skip
        worker.wait_for("recovered")
        before = len(worker.log.splitlines())
        assert mdp("kafka", "stop", *kafka).returncode == 0
        worker.wait_for("does not answer")
        time.sleep(OUTAGE)
        again = mdp("kafka", "start", *kafka, "--partitions", "1")  # the same port
        assert again.returncode == 0, again.stderr + again.stdout
        worker.wait_for("answers again")
        during = worker.log.splitlines()[before:]
        assert sum("does not answer" in line for line in during) == 1
        assert sum("answers again" in line for line in during) == 1
        assert len(during) <= MOST_LINES, "\n".join(during)
        assert "Traceback" not in worker.log

        fed = subprocess.run(
            [sys.executable, "-m", "mdp.cli", "ingest", "--duration", "2", "--rate", "20"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert fed.returncode == 0, fed.stderr
        wait_until(lambda: bool(read_topic(info.bootstrap, CANDLES, 0.5)), "candles after it")
        assert re.search(r"answers again after [0-9.]+s away", worker.log)
        assert worker.stop() == 0
    finally:
        if worker is not None:
            worker.stop()
        mdp("kafka", "stop", *kafka)
