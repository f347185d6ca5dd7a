"""The synthetic feed: deterministic per seed, honours rate and duration, valid batches."""

from __future__ import annotations

import numpy as np
import pytest

from core.ticks import TickBatch
from ingest.synthetic import DEFAULT_INSTRUMENTS, SyntheticFeed


def columns(batches: list[TickBatch]) -> list[tuple[object, ...]]:
    return [
        (
            b.instrument,
            b.price_scale,
            b.size_scale,
            b.trade_id.tolist(),
            b.price.tolist(),
            b.size.tolist(),
            b.side.tolist(),
            b.ts_event.tolist(),
        )
        for b in batches
    ]


def test_the_same_seed_gives_the_same_ticks_and_another_seed_others() -> None:
    feed = SyntheticFeed(rate=50, duration=10, seed=42, batch_size=64)
    again = SyntheticFeed(rate=50, duration=10, seed=42, batch_size=64)
    other = SyntheticFeed(rate=50, duration=10, seed=43, batch_size=64)
    assert columns(list(feed.batches())) == columns(list(again.batches()))
    assert columns(list(feed.batches())) != columns(list(other.batches()))


def test_rate_and_duration_give_the_tick_count_inside_the_time_span() -> None:
    feed = SyntheticFeed(rate=20, duration=30, start_ns=10**18, batch_size=100)
    batches = list(feed.batches())
    assert feed.total_ticks == 20 * 30 * len(DEFAULT_INSTRUMENTS)
    for instrument in DEFAULT_INSTRUMENTS:
        mine = [b for b in batches if b.instrument == instrument]
        ts = np.concatenate([b.ts_event for b in mine])
        assert len(ts) == 600
        assert ts.min() >= 10**18
        assert ts.max() < 10**18 + 30 * 10**9
        assert (np.diff(ts) > 0).all()
        per_second = np.bincount((ts - 10**18) // 10**9)
        assert per_second.tolist() == [20] * 30
        ids = np.concatenate([b.trade_id for b in mine])
        assert ids.tolist() == list(range(1, 601))


def test_batches_are_bounded_per_instrument_and_come_in_time_order() -> None:
    feed = SyntheticFeed(instruments=("SYNTH:A", "SYNTH:B"), rate=100, duration=5, batch_size=70)
    batches = list(feed.batches())
    assert all(1 <= len(b) <= 70 for b in batches)
    firsts = [int(b.ts_event[0]) for b in batches]
    assert firsts == sorted(firsts)
    assert {b.instrument for b in batches} == {"SYNTH:A", "SYNTH:B"}


def test_prices_sizes_and_sides_are_exact_fixed_point_and_valid() -> None:
    feed = SyntheticFeed(rate=1000, duration=60, seed=1, batch_size=10_000)
    sides: set[int] = set()
    for batch in feed.batches():
        assert (batch.price_scale, batch.size_scale) == (2, 6)
        assert batch.price.dtype == np.int64
        assert (batch.price > 0).all()
        assert (batch.size > 0).all()
        assert (batch.size <= 100_000).all()
        assert (batch.ts_recv == batch.ts_event).all()
        sides.update(batch.side.tolist())
    assert sides == {-1, 1}


def test_the_walk_of_one_instrument_does_not_depend_on_the_others() -> None:
    alone = SyntheticFeed(instruments=("SYNTH:BTCUSD",), rate=10, duration=10, seed=5)
    together = SyntheticFeed(
        instruments=("SYNTH:BTCUSD", "SYNTH:ETHUSD"), rate=10, duration=10, seed=5
    )
    btc = [b for b in together.batches() if b.instrument == "SYNTH:BTCUSD"]
    assert columns(list(alone.batches())) == columns(btc)


@pytest.mark.parametrize(
    "settings",
    [
        {"rate": 0},
        {"duration": -1},
        {"instruments": ()},
        {"instruments": ("nope",)},
        {"batch_size": 0},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each setting has its own message
        SyntheticFeed(**settings)  # type: ignore[arg-type]
