"""The read-model benchmark runs on a few orders and prints every contender (figures
unchecked) on a database of the session's server."""

from __future__ import annotations

import pytest

from bench import readmodels


def test_the_readmodels_benchmark_prints_every_contender(
    test_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = readmodels.main(["--smoke", "--database-url", test_database])
    assert [figure.name for figure in figures] == [
        "one INSERT per event (baseline)",
        "trading read models",
    ]
    assert all(figure.items == 1 + 20 * 6 for figure in figures)
    assert "events/s" in capsys.readouterr().out
