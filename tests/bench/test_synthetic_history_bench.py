"""The synthetic history benchmark runs on an hour and prints both contenders."""

from __future__ import annotations

import pytest

from bench import synthetic_history


def test_synthetic_history_benchmark_runs_and_prints_both_contenders(
    capsys: pytest.CaptureFixture[str],
) -> None:
    synthetic_history.main(["--smoke"])
    out = capsys.readouterr().out
    assert "mdp up's history" in out
    assert "1 tick/s all along (baseline)" in out
