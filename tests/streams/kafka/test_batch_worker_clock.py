"""The batch consumer's clock: a tick that keeps failing is logged with its traceback once a
window per kind of failure, the repeats counted in a summary line; the clock goes on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streams.kafka.batch_worker import CLOCK_TRACEBACK_EVERY, BatchWorker
from streams.kafka.engine_worker import WorkerSettings

TICKS = 8
STEP = CLOCK_TRACEBACK_EVERY * 0.4
"""Seconds of the fake clock between two ticks: a window holds the first tick and two more."""


class Failing:
    """An engine worker whose tick fails every time; the clock of the test moves on a step
    a tick, and the shell is stopped after :data:`TICKS` ticks."""

    def __init__(self, shell: BatchWorker, now: list[float]) -> None:
        self.shell, self.now, self.ticks = shell, now, 0

    async def tick(self) -> None:
        self.ticks += 1
        self.now[0] += STEP
        if self.ticks == TICKS:
            self.shell.stop("the test")
        raise ConnectionError("the broker is away")


async def test_a_failing_clock_logs_one_traceback_a_window_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    shell = BatchWorker(WorkerSettings(idle_every=0.2), monotonic=lambda: now[0])
    failing = Failing(shell, now)
    with caplog.at_level(logging.INFO, logger="streams.kafka.batch_worker"):
        await asyncio.wait_for(shell._clock(failing), 10.0)  # type: ignore[arg-type]
    assert failing.ticks == TICKS
    tracebacks = [r for r in caplog.records if r.exc_info]
    summaries = [r.getMessage() for r in caplog.records if "more time" in r.getMessage()]
    # failures at 24, 48, 72 | 96, 120, 144 | 168, 192 (fake seconds; a window is 60 s from
    # each one logged): three tracebacks, each after the first with its window's repeats told
    assert len(tracebacks) == 3
    assert all("the candle worker's clock failed; it goes on" in r.getMessage() for r in tracebacks)
    assert all(isinstance(r.exc_info[1], ConnectionError) for r in tracebacks if r.exc_info)
    told = "the candle worker's clock failed 2 more times with ConnectionError within 60s"
    assert summaries == [f"{told}; their tracebacks were not logged"] * 2
