"""``mdp worker`` reads ``md.ticks`` on the batch consumer unless asked for Faust: the choices
and the default are the engine worker's (one place, which the benchmarks follow too)."""

from __future__ import annotations

from mdp.cli import build_parser
from streams.kafka.engine_worker import CONSUMERS, DEFAULT_CONSUMER


def test_the_worker_runs_the_batch_consumer_unless_asked_for_faust() -> None:
    parser = build_parser()
    assert parser.parse_args(["worker"]).consumer == DEFAULT_CONSUMER == "batch"
    assert parser.parse_args(["worker", "--consumer", "faust"]).consumer == "faust"
    assert set(CONSUMERS) == {"batch", "faust"}
