"""The synthetic market of ``mdp up``: a day of history before the live ticks, generated in
seconds, and after a restart a continuation from the last stored trade (no jump back to the
seed's price, no hole in time)."""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from core.numbers import to_raw
from core.ticks import TickBatch
from ingest.synthetic import NS_PER_SECOND, START_PRICES
from ingest.synthetic_market import (
    DENSE_SPACING,
    DENSE_SPAN,
    SPARSE_SPACING,
    SyntheticMarket,
    SyntheticResume,
)

NOW = 1_780_000_000 * NS_PER_SECOND
DAY = 86_400 * NS_PER_SECOND
BTC = "SYNTH:BTCUSD"
ETH = "SYNTH:ETHUSD"


async def history_and_first_live(
    market: SyntheticMarket,
) -> tuple[list[TickBatch], dict[str, TickBatch]]:
    """The market's history (every batch before the wall clock), and the first live batch of
    each instrument."""
    history: list[TickBatch] = []
    live: dict[str, TickBatch] = {}
    async for batch in market:
        if int(batch.ts_event[0]) < NOW:
            history.append(batch)
            continue
        live.setdefault(batch.instrument, batch)
        if len(live) == len(market.instruments):
            return history, live
    raise AssertionError("the market ended")


class Columns(NamedTuple):
    price: npt.NDArray[np.int64]
    trade_id: npt.NDArray[np.int64]
    ts_event: npt.NDArray[np.int64]
    ts_recv: npt.NDArray[np.int64]


def of(batches: list[TickBatch], instrument: str) -> Columns:
    """One instrument's columns across the batches."""
    mine = [b for b in batches if b.instrument == instrument]
    return Columns(*(np.concatenate([getattr(b, name) for b in mine]) for name in Columns._fields))


def max_step(price: Decimal, weight: int) -> int:
    """The largest price step of a walk from ``price`` (see ingest.synthetic)."""
    return max(1, to_raw(price, 2) // 10_000) * math.isqrt(weight)


async def test_a_day_of_history_comes_first_sparse_then_dense_in_the_last_hour() -> None:
    market = SyntheticMarket((BTC, ETH), rate=20.0, seed=7, clock=lambda: NOW)
    history, live = await history_and_first_live(market)
    assert sum(len(b) for b in history) == market.history_ticks
    for instrument in (BTC, ETH):
        ticks = of(history, instrument)
        ts = ticks.ts_event
        assert NOW - DAY <= ts[0] < NOW - DAY + SPARSE_SPACING
        assert ts[-1] < NOW
        assert (np.diff(ts) > 0).all()
        assert (np.diff(ticks.trade_id) > 0).all()
        dense = ts >= NOW - DENSE_SPAN
        assert dense.sum() == DENSE_SPAN // DENSE_SPACING
        assert (~dense).sum() == (DAY - DENSE_SPAN) // SPARSE_SPACING
        assert (ticks.ts_recv == NOW).all()  # received now: not late ticks
        # The first price is the seed's.
        start = START_PRICES[instrument]
        assert abs(int(ticks.price[0]) - to_raw(start, 2)) <= max_step(start, 200)
        # The live walk goes on from the history's last price, with later trade ids.
        last = int(ticks.price[-1])
        assert abs(int(live[instrument].price[0]) - last) <= max_step(Decimal(last).scaleb(-2), 1)
        assert int(live[instrument].trade_id[0]) > int(ticks.trade_id[-1])


async def test_the_history_is_the_same_for_the_same_seed_and_clock() -> None:
    first, _ = await history_and_first_live(SyntheticMarket((BTC,), 20.0, 3, clock=lambda: NOW))
    again, _ = await history_and_first_live(SyntheticMarket((BTC,), 20.0, 3, clock=lambda: NOW))
    other, _ = await history_and_first_live(SyntheticMarket((BTC,), 20.0, 4, clock=lambda: NOW))
    assert of(first, BTC).price.tolist() == of(again, BTC).price.tolist()
    assert of(first, BTC).price.tolist() != of(other, BTC).price.tolist()


async def test_after_a_restart_it_continues_from_the_last_stored_trade() -> None:
    stopped_at = NOW - 600 * NS_PER_SECOND  # ten minutes down
    price = Decimal("61234.56")  # far from the seed's 87,000
    resume = {BTC: SyntheticResume(price, stopped_at)}
    market = SyntheticMarket((BTC, ETH), 20.0, 0, resume=resume, clock=lambda: NOW)
    history, _ = await history_and_first_live(market)
    btc = of(history, BTC)
    # Only the time it was down is filled, one tick a second, from the stored price on.
    assert stopped_at < int(btc.ts_event[0]) <= stopped_at + DENSE_SPACING
    assert len(btc.price) in (599, 600)
    assert abs(int(btc.price[0]) - to_raw(price, 2)) <= max_step(price, 20)
    steps = np.abs(np.diff(btc.price))
    assert steps.max() <= max_step(price, 20)
    # An instrument without stored trades gets its whole day.
    day = (DAY - DENSE_SPAN) // SPARSE_SPACING + DENSE_SPAN // DENSE_SPACING
    assert len(of(history, ETH).price) == day


async def test_a_day_of_history_is_generated_in_well_under_a_second() -> None:
    market = SyntheticMarket((BTC, ETH, "SYNTH:SOLUSD"), 20.0, 0, clock=lambda: NOW)
    started = time.perf_counter()
    history, _ = await history_and_first_live(market)
    assert sum(len(b) for b in history) == market.history_ticks
    assert time.perf_counter() - started < 5.0  # generous: a busy machine; typically 0.05 s


async def test_after_a_restart_the_instruments_are_refilled_side_by_side_in_time() -> None:
    """Three hours down: the refill of one instrument must not run ahead of the others' (the
    engine would see the others idle meanwhile), so the batches come in time order."""
    stopped_at = NOW - 3 * 3600 * NS_PER_SECOND
    instruments = (BTC, ETH, "SYNTH:SOLUSD")
    resume = {name: SyntheticResume(Decimal(100), stopped_at) for name in instruments}
    market = SyntheticMarket(instruments, 20.0, 0, resume=resume, clock=lambda: NOW)
    history, _ = await history_and_first_live(market)
    firsts = [int(batch.ts_event[0]) for batch in history]
    assert firsts == sorted(firsts)
    assert {batch.instrument for batch in history[: len(instruments)]} == set(instruments)
