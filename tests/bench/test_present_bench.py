"""The presentation benchmark runs on tiny inputs; its baseline (the tree before
``core.present``, from git) writes the same bytes on every road (figures are not checked)."""

from __future__ import annotations

import pytest

from bench import present


def test_present_benchmark_runs_every_road_beside_its_baseline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pairs = present.main(["--smoke"])
    out = capsys.readouterr().out
    for road in present.new_roads():
        assert f"{road}, core.present" in out
    if "no baseline" in out:
        pytest.skip("git cannot give the baseline revision here (a shallow clone?)")
    assert set(pairs) == set(present.new_roads())
    assert "every road's bytes equal the baseline's" in out
