"""The history API benchmark runs on a tiny input with every contender (figures not checked)."""

from __future__ import annotations

import pytest

from bench import history


def test_history_benchmark_runs_and_prints_every_contender(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = history.main(["--smoke", "--database-url", postgres_url])
    out = capsys.readouterr().out
    names = [figure.name for figure in figures]
    assert names == [
        "naive (psycopg + json.dumps)",
        "/v1/candles JSON (database)",
        "/v1/candles Arrow (database)",
        "/v1/candles JSON (cached)",
        "/v1/candles Arrow (cached)",
        "/v1/candles Arrow (cached, httpx)",
        "/v1/candles CSV (database)",
    ]
    for figure in figures:
        assert len(figure.seconds) == 10  # each answer was checked to hold every candle
        assert figure.name in out
    assert "target p99" in out


def test_the_benchmark_candles_are_valid_and_closed() -> None:
    candles = history.candles(500)
    assert len({c.open_time for c in candles}) == 500
    assert {c.status.value for c in candles} == {"closed"}
