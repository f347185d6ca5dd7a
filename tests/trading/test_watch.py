"""The trading process's watch: a task that ends while the process runs is a failure, logged
with its cause and told once; tasks that end because the process stops are not."""

from __future__ import annotations

import asyncio
import logging

import pytest

from trading.watch import CONSUMER_STOPPED, Watch


async def test_a_task_that_fails_is_logged_with_its_error_and_told_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    told: list[str] = []
    watch = Watch(on_failure=lambda: told.append("stop"))

    async def broken() -> None:
        raise RuntimeError("the store is gone")

    async def returns() -> None:
        return None

    with caplog.at_level(logging.ERROR, logger="trading.watch"):
        watch.start("md.ticks", broken())
        watch.start("trading.commands", returns())
        await asyncio.sleep(0.01)
    assert watch.failure is not None
    assert watch.code == CONSUMER_STOPPED
    assert watch.failure.reason == "the md.ticks task failed: RuntimeError: the store is gone"
    assert told == ["stop"]  # the second failure is logged, not told again
    logged = [record.getMessage() for record in caplog.records]
    assert any("the trading.commands task ended" in line for line in logged)
    assert any(record.exc_info for record in caplog.records)  # the traceback of the error
    await watch.close()


async def test_tasks_that_end_because_the_process_stops_are_no_failure() -> None:
    stop = asyncio.Event()
    watch = Watch(on_failure=stop.set)
    stopping = asyncio.Event()
    watch.start("outbox", stopping.wait())
    assert watch.code is None
    stopping.set()
    closing = asyncio.create_task(watch.close())
    await closing
    assert (watch.failure, stop.is_set()) == (None, False)
