from __future__ import annotations

import asyncio

import numpy as np

from core.ticks import TickBatch
from ingest.pacing import paced, slices
from ingest.synthetic import SyntheticFeed

SECOND = 1_000_000_000


def feed(rate: float = 100.0, duration: float = 3.0) -> list[TickBatch]:
    return list(
        SyntheticFeed(instruments=("SYNTH:BTCUSD",), rate=rate, duration=duration).batches()
    )


def test_slices_cut_where_event_time_enters_a_new_window_and_keep_every_tick() -> None:
    (batch,) = feed()
    parts = slices(batch, SECOND)
    assert [len(p) for p in parts] == [100, 100, 100]
    assert np.array_equal(np.concatenate([p.trade_id for p in parts]), batch.trade_id)


class FakeClock:
    """Wall time that moves only when the code under test sleeps."""

    def __init__(self, start: int) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += round(seconds * 1e9)


async def collect(speed: float | None, clock: FakeClock) -> list[TickBatch]:
    return [part async for part in paced(feed(), speed, clock, clock.sleep)]


def test_replay_at_speed_waits_event_time_divided_by_speed_and_stamps_receipt() -> None:
    clock = FakeClock(start=5 * SECOND)
    parts = asyncio.run(collect(2.0, clock))
    assert sum(len(p) for p in parts) == 300
    assert abs(sum(clock.slept) - 1.5) < 0.05  # three event seconds at twice real time
    for part in parts:
        assert (part.ts_recv == part.ts_recv[0]).all()
        assert int(part.ts_recv[0]) >= 5 * SECOND
    assert [int(p.ts_recv[0]) for p in parts] == sorted(int(p.ts_recv[0]) for p in parts)


def test_replay_without_a_speed_never_waits() -> None:
    clock = FakeClock(start=SECOND)
    parts = asyncio.run(collect(None, clock))
    assert clock.slept == []
    assert sum(len(p) for p in parts) == 300
