"""A batch-consumer worker (``mdp worker --consumer batch``) started in a group whose members
are Faust workers cannot join it (Faust assigns partitions with a protocol of its own): it
says so in a line, with the reason, and exits 1, instead of waiting for ever on a broker that
does answer. The Faust worker keeps its partitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.streams.kafka.cluster import Cluster
from tests.streams.kafka.conftest import PARTITIONS

pytestmark = pytest.mark.usefixtures("fresh_topics")


def test_a_batch_worker_in_a_group_of_faust_workers_says_why_it_cannot_join_and_exits(
    fresh_topics: str, tmp_path: Path
) -> None:
    with Cluster(fresh_topics, "", tmp_path) as cluster:
        faust = cluster.worker("--consumer", "faust")
        faust.wait_for("recovered", count=PARTITIONS)
        batch = cluster.worker("--consumer", "batch")
        assert batch.process.wait(60) == 1, batch.log
        assert f"group engine-{cluster.suffix} could not join" in batch.log
        assert "InconsistentGroupProtocol" in batch.log
        assert "the workers of one --group must all run the same --consumer" in batch.log
        assert "does not answer" not in batch.log
        assert "Traceback" not in batch.log
        assert faust.process.poll() is None
        assert "handed over" not in faust.log
