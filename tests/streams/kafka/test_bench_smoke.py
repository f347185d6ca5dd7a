"""The Kafka benchmark runs on tiny inputs against the session's broker (figures unchecked,
but the ticks it counts must be the ticks it sent)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import kafka, latency
from streams.kafka.engine_worker import DEFAULT_CONSUMER
from streams.kafka.journal import Step


def test_kafka_benchmark_runs_and_prints_every_figure(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kafka.main(["--smoke", "--bootstrap", kafka_bootstrap]) == 0
    out = capsys.readouterr().out
    assert f"one `mdp worker --consumer {DEFAULT_CONSUMER}`" in out, "the worker's own default"
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
    counted = re.search(r"([\d,]+) ticks ingested, ([\d,]+) consumed", out)
    assert counted is not None, out
    assert counted[1] == counted[2], "the worker's steps carry exactly the ticks ingested"


def test_the_sustained_rate_counts_the_ticks_each_record_carries() -> None:
    carried = {(0, 0): 2_000, (0, 1): 500, (0, 2): 700, (1, 0): 1_234}
    steps = [
        (0, Step("g", 0, 0, 0, 0, 1, 0)),
        (1_000_000_000, Step("g", 1, 0, 0, 0, 1, 0)),
        (2_000_000_000, Step("g", 0, 0, 1, 1, 3, 0)),
    ]
    assert kafka.ticks_of((step for _, step in steps), carried) == 4_434
    assert kafka.sustained_rate(steps, carried) == (1_234 + 500 + 700) / 2.0
    same_moment = [(0, step) for _, step in steps]  # one step's worth of time: not timed
    assert kafka.sustained_rate(same_moment, carried) is None
    assert kafka.partition_ends(carried) == {0: 3, 1: 1}


@pytest.mark.parametrize("consumer", ["faust", "batch"])
def test_latency_benchmark_cluster_smoke_reaches_the_websocket_client(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str], consumer: str
) -> None:
    argv = ["--smoke", "--modes", "cluster", "--bootstrap", kafka_bootstrap, "--consumer", consumer]
    [result] = latency.main(argv)
    out = capsys.readouterr().out
    assert f"worker consumer {consumer}" in out
    assert "send -> engine polled" in result.stages, out
    assert result.mode == "cluster"
    assert result.batches > 0
    assert result.missed == 0, out
    assert set(result.hops) == set(latency.HOPS), out


def test_kafka_benchmark_runs_another_checkouts_worker_beside_this_ones(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    checkout = Path(__file__).resolve().parents[3]
    argv = ["--smoke", "--bootstrap", kafka_bootstrap, "--against", str(checkout), "--runs", "1",
            "--consumer", "faust"]  # fmt: skip
    assert kafka.main(argv) == 0  # each worker's ticks all consumed: Faust's, and the default's
    out = capsys.readouterr().out
    assert "this checkout" in out
    assert "(this checkout: --consumer faust)" in out
    # a figure, or n/a where the tiny backlog went in one step or a few clock ticks of CPU
    known = r"(?:[\d,.]+|n/a)"
    assert re.search(rf"{re.escape(str(checkout)[-44:])}\s+{known}\s+{known}", out), out
    assert re.search(r"this checkout / the other: (?:[\d.]+x|n/a)", out), out
    assert re.search(r"CPU per tick, this checkout / the other: (?:[\d.]+x|n/a)", out), out
    with pytest.raises(SystemExit):
        kafka.main(["--against", str(tmp_path)])  # not a checkout: refused before any run
    assert "is not a checkout of this project" in capsys.readouterr().err
