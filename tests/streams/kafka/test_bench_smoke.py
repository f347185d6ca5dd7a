"""The Kafka benchmark runs on tiny inputs against the session's broker (figures unchecked)."""

from __future__ import annotations

import pytest

from bench import kafka


def test_kafka_benchmark_runs_and_prints_every_figure(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kafka.main(["--smoke", "--bootstrap", kafka_bootstrap]) == 0
    out = capsys.readouterr().out
    for figure in (
        "kafka-python",
        "aiokafka",
        "confluent-kafka",
        "mdp worker, sustained (ticks/s)",
        "Faust tumbling table, baseline (events/s)",
        "p50",
        "p99",
    ):
        assert figure in out
