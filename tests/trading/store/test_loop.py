"""A log follower (the outbox, a projector) outlives a step that fails in a way nobody
foresaw: the failure is logged once, the step is tried again after a pause, and the loop
ends only when told to stop. Before, only the store or the bus being away was ridden out: a
read-only transaction after a failover ended the outbox for the life of the process."""

from __future__ import annotations

import asyncio

import pytest

from trading.store.loop import follow_log


async def test_a_step_that_fails_unforeseen_is_logged_once_and_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    steps: list[str] = []

    async def step() -> int:
        steps.append("step")
        if len(steps) <= 2:
            raise RuntimeError("cannot execute UPDATE in a read-only transaction")
        if len(steps) == 5:
            stop.set()
        return 1

    async with asyncio.timeout(5):
        await follow_log("outbox", step, stop, idle_s=0.01, retry_s=0.01)
    assert len(steps) == 5
    first, last = [record for record in caplog.records if record.name == "trading.store.loop"]
    assert first.getMessage() == (
        "outbox unavailable (RuntimeError: cannot execute UPDATE in a read-only transaction);"
        " retrying with backoff"
    )
    assert first.exc_info is not None
    assert last.getMessage().startswith("outbox available again after")
