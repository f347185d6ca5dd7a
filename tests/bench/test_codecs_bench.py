"""The codecs benchmark runs on tiny inputs and its contenders agree (figures are not checked)."""

from __future__ import annotations

import asyncio

import pytest

from bench import codecs
from bench.engine import synthetic


def test_codecs_benchmark_runs_and_prints_every_contender(
    capsys: pytest.CaptureFixture[str],
) -> None:
    codecs.main(["--smoke"])
    out = capsys.readouterr().out
    for contender in (
        "columnar (core.codecs)",
        "per-tick msgpack arrays",
        "per-tick JSON objects",
        "msgpack (core.codecs)",
        "MemoryBus publish + poll + commit",
    ):
        assert contender in out


def test_codecs_benchmark_contenders_carry_every_tick_and_message() -> None:
    batches = synthetic(5_000, 256)
    ticks = sum(len(batch) for batch in batches)
    assert codecs.columnar(batches) == codecs.per_tick_msgpack(batches) == ticks
    assert codecs.per_tick_json(batches) == ticks
    values = [b"v"] * 300
    assert asyncio.run(codecs.through_bus(values)) == asyncio.run(codecs.through_queue(values))
