"""The workers of one group must all run the same consumer (Faust assigns partitions with a
protocol of its own). A batch-consumer worker (the default) started in a group of Faust workers
cannot join it: it says so in a line, with the reason, and exits 1, instead of waiting for ever
on a broker that does answer. A Faust worker (``--consumer faust``) started in a group of
batch-consumer workers is refused before Faust starts (Faust's own join would log the broker's
error once and then wait for ever). The workers already in the group keep their partitions."""

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


def test_a_faust_worker_in_a_group_of_batch_workers_is_refused_before_it_starts(
    fresh_topics: str, tmp_path: Path
) -> None:
    with Cluster(fresh_topics, "", tmp_path) as cluster:
        batch = cluster.worker()  # the default consumer
        batch.wait_for("recovered", count=PARTITIONS)
        faust = cluster.worker("--consumer", "faust")
        assert faust.process.wait(60) == 1, faust.log
        assert (
            f"mdp worker: error: the members of group engine-{cluster.suffix} do not run Faust"
            in faust.log
        )
        assert "the workers of one --group must all run the same --consumer" in faust.log
        assert "Starting" not in faust.log, "refused before Faust started"
        assert "Traceback" not in faust.log
        assert batch.process.poll() is None
        assert "handed over" not in batch.log
