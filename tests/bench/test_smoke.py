"""Every benchmark runs on tiny inputs, so that it keeps working (figures are not checked)."""

from __future__ import annotations

import pytest

from bench import engine
from bench import storage as storage_bench
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


def test_storage_benchmark_runs_and_prints_every_contender(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    storage_bench.main(["--smoke", "--database-url", postgres_url])
    out = capsys.readouterr().out
    for contender in (
        "store.write (binary COPY)",
        "binary COPY, no unique key",
        "replayed (staging + ON CONFLICT)",
        "text COPY, rows by format_fixed",
        "executemany INSERT (baseline)",
        "store.write: new candles",
        "store.write: higher revisions",
        "executemany upsert (baseline)",
    ):
        assert contender in out
