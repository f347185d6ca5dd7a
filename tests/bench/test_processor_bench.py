"""The processor-loop benchmark runs on tiny inputs and its contenders agree."""

from __future__ import annotations

import pytest

from bench import processor


def test_processor_benchmark_runs_and_prints_every_contender(
    capsys: pytest.CaptureFixture[str],
) -> None:
    processor.main(["--smoke"])
    out = capsys.readouterr().out
    for contender in ("processor round (engine step)", "plain decode + engine + encode"):
        assert contender in out


def test_processor_benchmark_contenders_publish_the_same_candle_updates() -> None:
    polls = processor.polls(processor.records(5_000, 50), 16)
    updates = processor.run_plain(polls)
    assert updates > 0
    assert processor.run_processor(polls) == updates
