"""The event store benchmark runs on a few appends and prints every contender (figures
unchecked) on a database of the session's server."""

from __future__ import annotations

import pytest

from bench import event_store


def test_the_event_store_benchmark_prints_every_contender(
    test_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = event_store.main(["--smoke", "--database-url", test_database])
    assert [figure.name for figure in figures] == [
        "plain INSERT transaction (baseline)",
        "append, sync",
        "append, async shell",
    ]
    assert all(figure.count == 30 for figure in figures)
    out = capsys.readouterr().out
    assert "p99 ms" in out
