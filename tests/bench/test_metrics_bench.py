"""The metrics benchmark runs on tiny inputs and prints every contender beside its baseline
(the figures are not checked: benchmarks measure, tests do not time)."""

from __future__ import annotations

import re

import pytest

from bench import metrics


def test_metrics_benchmark_runs_and_prints_each_contender_with_and_without(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics.main(["--smoke"])
    out = capsys.readouterr().out
    for contender in ("records of 100, polls of 256", "1 tick a poll (worst case)",
                      "batches of 100"):  # fmt: skip
        assert f"{contender}, metrics on" in out
        assert f"{contender}, metrics off" in out
    assert "with HttpMetrics" in out
    assert re.search(r"the middleware's cost: -?\d+\.\d µs a request", out), out
    assert re.search(r"scrape: \d+\.\d\d ms a /metrics rendering", out), out


def test_metrics_off_turns_the_engine_s_metrics_off_and_back_on() -> None:
    import streams.engine_runner as runner

    on = vars(runner)["ENGINE_TICKS"]
    with metrics.engine_off():
        assert vars(runner)["ENGINE_TICKS"] is metrics.OFF
    assert vars(runner)["ENGINE_TICKS"] is on
