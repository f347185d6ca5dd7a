"""Every benchmark runs on tiny inputs, so that it keeps working (figures are not checked)."""

from __future__ import annotations

import pytest

from bench import engine
from core.engine import CandleEngine, EngineConfig


def test_engine_benchmark_runs_and_prints_every_contender(
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine.main(["--smoke"])
    out = capsys.readouterr().out
    for contender in ("engine (7 intervals)", "naive per-tick dict", "polars group_by_dynamic"):
        assert out.count(contender) >= 1
    assert "synthetic" in out


def test_engine_benchmark_contenders_build_the_same_bars() -> None:
    batches = engine.synthetic(20_000, 1024)
    bars = engine.run_naive(batches)
    assert bars == engine.run_polars(engine.polars_frame(batches))
    final_only = CandleEngine(EngineConfig(emit_open=False))
    closed = sum(len(final_only.feed(batch).candles) for batch in batches)
    assert closed + len(final_only.flush().candles) == bars
