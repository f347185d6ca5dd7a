"""The outage benchmark runs on a tiny input, a short outage included (figures not checked)."""

from __future__ import annotations

import pytest

from bench import outage


def test_outage_benchmark_runs_both_replays_and_prints_every_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    baseline, stopped = outage.main(["--smoke"])
    out = capsys.readouterr().out
    assert [baseline.name, stopped.name] == ["baseline (no outage)", "outage-2s"]
    for run in (baseline, stopped):
        assert run.samples[-1].stored == run.samples[-1].published  # every tick stored
        assert run.name in out
    assert stopped.window[1] - stopped.window[0] >= 2.0
    assert stopped.catch_up() >= 0
    for column in ("feed ticks/s in window", "catch-up s", "peak buffer", "feed paused s"):
        assert column in out
