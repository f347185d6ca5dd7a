"""``mdp ingest`` rides out a broker outage longer than its request timeout (3 s here): it reads
``bus blocked`` meanwhile and finishes the replay once the broker is back, every tick of the
file on ``md.ticks``, the process never gone.

Which way the producer waits depends on where the outage finds the batch under way: one the
broker was sending when it went is retried by the client itself until it is back; one still
waiting for a leader is given up after ``--request-timeout``, and ingest sends it again with
backoff (told once, and once when the broker is back: the path
``tests/ingest/test_publisher_outage.py`` takes every time)."""

from __future__ import annotations

import time
from pathlib import Path

from core import codecs
from core.topics import TICKS
from tests.streams.kafka.cluster import read_topic
from tests.streams.kafka.test_admin_readiness import answers, broker_of_its_own, ready_url

TICKS_IN_FILE = 300
EVENT_SECONDS = 100
REQUEST_TIMEOUT = 3
SPEED = "5"  # 20 s of wall time: the broker is stopped (a few seconds) well before its end
T0 = 1_767_225_600_000_000_000


def tick_file(path: Path) -> Path:
    step = EVENT_SECONDS * 1_000_000_000 // TICKS_IN_FILE
    rows = (
        f"KRAKEN:XBTUSDT,{i},{100_000 + i % 7}.5,0.25,buy,{T0 + i * step}\n"
        for i in range(TICKS_IN_FILE)
    )
    path.write_text("instrument,trade_id,price,size,side,ts_event\n" + "".join(rows))
    return path


def test_a_replay_goes_on_after_the_broker_was_away_longer_than_the_request_timeout(
    tmp_path: Path,
) -> None:
    replay = tick_file(tmp_path / "ticks.csv")
    with broker_of_its_own(tmp_path, "") as (cluster, stop, start):
        ingest = cluster.start(
            "ingest", "ingest", "--replay", str(replay), "--speed", SPEED,
            "--request-timeout", str(REQUEST_TIMEOUT), "--admin-port", "0", "--ready-stale", "1",
        )  # fmt: skip
        ready = ready_url(ingest)
        answers(ready, 200)  # publishing
        stop()
        assert answers(ready, 503, "bus", "blocked")[1]["detail"] == "bus blocked"
        time.sleep(REQUEST_TIMEOUT + 1)  # a batch waiting for a leader is given up meanwhile
        start()
        assert ingest.process.wait(60) == 0, ingest.log
        log = ingest.log
        assert f"{TICKS_IN_FILE:,} ticks in " in log, log
        told = log.count("bus unavailable (publishing to md.ticks failed")
        assert told <= 1, log  # told once (an outage under 30 s)...
        assert log.count("bus available again after ") == told, log  # ...and its end
        assert not any(line.startswith("Traceback") for line in log.splitlines()), log

        ids = [
            tick.trade_id
            for value in read_topic(cluster.bootstrap, TICKS)
            for tick in codecs.decode_tick_batch(value).ticks()
        ]
        assert set(ids) == set(range(TICKS_IN_FILE)), "a tick was lost"
        # a batch the broker stored before its answer was lost is on the topic twice: the
        # engine drops repeated trade ids, the writer the rows it has
        repeated = len(ids) - TICKS_IN_FILE
        print(f"{repeated} repeated ticks of {TICKS_IN_FILE}; given up and sent again: {told}")
