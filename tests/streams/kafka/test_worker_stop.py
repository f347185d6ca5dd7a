"""``mdp worker`` (either consumer) stopped by SIGTERM mid-feed: it exits 0, every partition's
checkpoint is saved, it has left its group (no member remains), a worker started next replays
no step of the journal, and the group's committed offsets are exactly where those
checkpoints go on. A Faust worker stopped so is followed by a batch one (the default since it
replaced Faust's: a group upgraded), which carries on the same way."""

from __future__ import annotations

import re
import time
from pathlib import Path

import psycopg
import pytest
from kafka.admin import KafkaAdminClient

from core.topics import TICKS
from streams.kafka.journal import decode_checkpoint
from tests.streams.kafka.cluster import Cluster
from tests.streams.kafka.conftest import PARTITIONS

pytestmark = pytest.mark.usefixtures("fresh_topics")


def group_view(bootstrap: str, group: str) -> tuple[int, dict[int, int]]:
    """The members of ``group`` and its committed offsets of md.ticks by partition."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        members = len(admin.describe_groups([group])[group]["members"])
        offsets = admin.list_group_offsets(group)[group]
    finally:
        admin.close()
    return members, {tp.partition: o.offset for tp, o in offsets.items() if tp.topic == TICKS}


def checkpoints(url: str, group: str) -> dict[int, int | None]:
    """Where each saved checkpoint of ``group`` goes on (the offset after those applied)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT data FROM checkpoints WHERE name LIKE %s", (f"{group}@%",)
        ).fetchall()
    found = [decode_checkpoint(bytes(data)) for (data,) in rows]
    return {c.partition: c.applied for c in found}


@pytest.mark.parametrize(
    ("consumer", "restarted_on"),
    [("faust", "batch"), ("batch", "batch")],
    ids=["faust, restarted on batch", "batch"],
)  # Faust's restarts: the kill test (test_cluster.py); a stopped Faust group upgraded: here
def test_sigterm_saves_checkpoints_commits_where_they_stand_and_leaves_the_group(
    fresh_topics: str, migrated_database: str, tmp_path: Path, consumer: str, restarted_on: str
) -> None:
    with Cluster(fresh_topics, migrated_database, tmp_path) as cluster:
        group = f"engine-{cluster.suffix}"
        args = ("--checkpoint-every", "3600")  # saved only on the stop
        worker = cluster.worker("--consumer", consumer, *args)
        worker.wait_for("recovered", count=PARTITIONS)
        fed = cluster.ingest("--duration", "1", "--rate", "40")
        assert fed.returncode == 0, fed.stderr
        time.sleep(0.5)
        assert worker.stop() == 0
        saved = checkpoints(migrated_database, group)
        assert set(saved) == set(range(PARTITIONS)), "every partition's checkpoint"
        applied = {p: offset for p, offset in saved.items() if offset is not None}
        assert applied, "the worker had applied records when it was stopped"
        members, committed = group_view(fresh_topics, group)
        assert members == 0, "the group was left"
        assert committed == applied

        again = cluster.worker("--consumer", restarted_on, *args)
        again.wait_for("recovered", count=PARTITIONS)
        replayed = re.findall(r"recovered in [0-9.]+s: offset \S+, (\d+) steps replayed", again.log)
        assert replayed == ["0"] * PARTITIONS
    assert "Traceback" not in worker.log + again.log
