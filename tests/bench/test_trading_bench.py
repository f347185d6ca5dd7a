"""The trading benchmark runs on tiny sizes and prints every row with its figures (unchecked)
on a database of the session's server: with the outbox and the projector in its process, in
a process of their own, and with each filling trade filling orders of several accounts (and
snapshots often)."""

from __future__ import annotations

import asyncio
import math
import re
from decimal import Decimal

import pytest

from bench import trading
from streams.memory import MemoryBus
from telemetry.readiness import READINESS
from trading.followers import OUTBOX_CHECK, PROJECTOR_CHECK
from trading.paper.matcher import PaperMatcher
from trading.service.shell import TradingService
from trading.store.database import Database, StoreSettings


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--followers", "separate"],
        ["--fill-accounts", "3", "--snapshot-every", "3"],
    ],
    ids=["followers-in-process", "followers-separate", "three-accounts-a-fill"],
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


async def test_the_benchmarks_followers_are_the_services_wiring(fresh_database: str) -> None:
    """The followers it times are those of ``mdp trading serve`` and ``follow``
    (:func:`trading.followers.start_followers`): their readiness checks are there while they
    run and gone when they stop, and the timed projector reports its lags."""
    stop, started, lags = asyncio.Event(), asyncio.Event(), trading.Lags()
    with Database(StoreSettings(fresh_database)) as database:
        database.create_tables()
        async with MemoryBus() as bus:
            running = asyncio.create_task(
                trading.followers(database, bus, lags, stop, 0.05, False, started)
            )
            await asyncio.wait_for(started.wait(), 10)
            for _ in range(200):  # the projector tells "started" from its thread, and its loop
                if {OUTBOX_CHECK, PROJECTOR_CHECK} <= READINESS.checks().keys():  # may not yet
                    break  # have registered its check then (a CI run saw only the outbox's)
                await asyncio.sleep(0.05)
            assert {OUTBOX_CHECK, PROJECTOR_CHECK} <= READINESS.checks().keys()
            service = TradingService(database, PaperMatcher())
            await service.deposit(1, "USDT", Decimal(10))
            for _ in range(200):
                if lags.seconds:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(running, 10)
    assert len(lags.seconds) == 1
    assert not {OUTBOX_CHECK, PROJECTOR_CHECK} & READINESS.checks().keys()
