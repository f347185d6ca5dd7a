"""The trading benchmark runs on tiny sizes and prints every row with its figures (unchecked)
on a database of the session's server: with the outbox and the projector in its process, in
a process of their own, and with each filling trade filling orders of several accounts."""

from __future__ import annotations

import math
import re

import pytest

from bench import trading


@pytest.mark.parametrize(
    "extra",
    [[], ["--followers", "separate"], ["--fill-accounts", "3"]],
    ids=["followers-in-process", "followers-separate", "fills-of-three-accounts"],
)
def test_the_trading_benchmark_prints_every_row_with_a_number(
    test_database: str, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    rows = trading.main(["--smoke", "--database-url", test_database, *extra])
    names = [row.name for row in rows]
    assert names == [
        "plain INSERT transaction (baseline)",
        "order ack (place to order-accepted stored)",
        "tick-to-fill (on_ticks to order-filled on the bus)",
        "projection lag (append to read model)",
    ]
    for row in rows:
        assert row.failures == 0, row.name
        assert row.spread.count > 0, row.name
        assert math.isfinite(row.spread.p50_ms), row.name
        assert math.isfinite(row.spread.p99_ms), row.name
    out = capsys.readouterr().out
    for name in names:
        assert re.search(re.escape(name) + r"\s+\d+\.\d\d\s+\d+\.\d\d\s", out), name
    assert [row.target_ms for row in rows] == [
        None,
        trading.ACK_P99_MS,
        trading.FILL_P99_MS,
        trading.LAG_P99_MS,
    ]
