"""The alerts benchmark runs on tiny inputs and its contenders agree (figures are not checked)."""

from __future__ import annotations

import pytest

from bench import alerts
from main_api.alerts import AlertEvaluator


def test_alerts_benchmark_runs_and_prints_both_contenders(
    capsys: pytest.CaptureFixture[str],
) -> None:
    alerts.main(["--smoke"])
    out = capsys.readouterr().out
    for contender in ("indexed (main_api.alerts)", "naive (every alert, every tick)"):
        assert contender in out
    assert "x baseline" in out


def test_alerts_benchmark_contenders_fire_the_same_alerts() -> None:
    names = alerts.instruments(3)
    specs = alerts.synthetic_alerts(600, names)
    batches = alerts.random_walk(3_000, names, 128, 2_000, step_bp=0.5)
    indexed = alerts.run(AlertEvaluator(), specs, batches)
    naive = alerts.run(alerts.NaiveEvaluator(), specs, batches)
    assert len(indexed) > 100
    assert indexed == naive
