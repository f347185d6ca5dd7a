"""``mdp writer`` in cluster mode through a database outage, on the real broker and a private
PostgreSQL that the test stops and starts: the writer keeps running, tells the outage once (not
per retry), commits nothing on Kafka that is not stored, and stores every candle and tick once
when the database is back. SIGTERM then stops it at once, whatever ``--status-every`` says."""

from __future__ import annotations

import time
from pathlib import Path

from tests.storage.stoppable import StoppablePostgres
from tests.streams.kafka.cluster import (
    KRAKEN,
    Cluster,
    Service,
    kraken_complete,
    official,
    stored_minutes,
    tick_rows,
    wait_until,
)

STATUS_EVERY = 3600.0
"""Far beyond any stop's wait (60 s, then kill -9): a writer that waited for its status
period to stop would be killed, and exit non-zero."""


def test_the_writer_rides_out_a_database_outage_and_stops_promptly(
    fresh_topics: str,
    stoppable_postgres: StoppablePostgres,
    shared_data: Path,
    tmp_path: Path,
) -> None:
    url = stoppable_postgres.database()
    with Cluster(fresh_topics, url, tmp_path) as cluster:
        writer = cluster.start(
            "writer", "writer", "--group", f"writer-{cluster.suffix}", "--batch", "50",
            "--status-every", str(STATUS_EVERY),
        )  # fmt: skip
        worker_env = {k: v for k, v in cluster.env.items() if k != "DATABASE_URL"}
        worker = Service(
            "worker",
            ["worker", "--group", f"engine-{cluster.suffix}", "--interval", "1m",
             "--clock-offset", "60"],
            tmp_path, worker_env,
        )  # fmt: skip
        cluster.services.append(worker)
        worker.wait_for("recovered", count=4)
        writer.wait_for("writing group")

        stoppable_postgres.stop()
        done = cluster.ingest("--replay", str(shared_data / KRAKEN / "trades.json"), "--speed", "0")
        assert done.returncode == 0, done.stderr
        writer.wait_for("database unavailable")
        time.sleep(3)  # retries go on, quietly
        assert writer.process.poll() is None, writer.log

        stoppable_postgres.start()
        wait_until(lambda: kraken_complete(url), "the last official minute")
        wait_until(lambda: tick_rows(url) == (471, 471), "every tick")
        expected = official(shared_data)
        stored = stored_minutes(url)
        assert {t: stored[t][0] for t in expected} == expected

        assert writer.stop() == 0  # on SIGTERM, not after --status-every
    log = writer.log
    assert log.count("retrying with backoff") == 1, log  # told once, not per attempt
    assert "database available again" in log
    assert "error connecting" not in log  # the pool's per-attempt lines stay quiet
    assert "Traceback" not in log


def test_sigterm_stops_an_idle_writer_at_once(
    fresh_topics: str, migrated_database: str, tmp_path: Path
) -> None:
    with Cluster(fresh_topics, migrated_database, tmp_path) as cluster:
        writer = cluster.start(
            "writer", "writer", "--group", f"writer-{cluster.suffix}",
            "--status-every", str(STATUS_EVERY),
        )  # fmt: skip
        writer.wait_for("writing group")
        time.sleep(1)  # in its poll loop
        assert writer.stop() == 0  # on SIGTERM, not after --status-every
    assert "Traceback" not in writer.log
