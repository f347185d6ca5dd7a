"""The paper matcher benchmark runs on a few trades and prints every contender (figures
unchecked); its order books do what their names say."""

from __future__ import annotations

import pytest

from bench import paper as bench
from bench.engine import synthetic


def test_the_paper_benchmark_prints_every_contender(capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(["--smoke"])
    out = capsys.readouterr().out
    for contender in (
        "per-tick floor",
        "no orders (baseline)",
        "never reached",
        "reached",
        "market",
    ):
        assert contender in out


def test_the_contenders_books_never_fill_sometimes_fill_and_always_fill() -> None:
    ticks = [tick for batch in synthetic(2_000, 500) for tick in batch.ticks()]
    far, near, market = (
        bench.never_reached(ticks, 40),
        bench.reached(ticks, 40),
        bench.market(ticks),
    )
    assert bench.run(far, ticks) == len(far)  # accepted, and nothing else
    assert len(far) < bench.run(near, ticks)
    assert bench.run(market, ticks) == len(market) + len(ticks)  # one fill per trade
