"""The batch consumer's periodic commit runs in the background: what it raises past the
failures :meth:`BatchWorker.commit` tells is logged with the worker's own words, not lost."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streams.bus import Offsets
from streams.kafka.batch_worker import BatchWorker
from streams.kafka.engine_worker import WorkerSettings


class Broken:
    """A subscription whose commit fails as no bus failure does (a bug)."""

    def __init__(self) -> None:
        self.asked: list[Offsets] = []

    async def commit(self, offsets: Offsets) -> None:
        self.asked.append(offsets)
        raise LookupError("no such offset table")


async def test_an_unexpected_failure_of_the_periodic_commit_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shell = BatchWorker(WorkerSettings())
    broken = Broken()
    shell._subscription = broken  # type: ignore[assignment]
    shell._pending[("md.ticks", 3)] = 17
    with caplog.at_level(logging.ERROR, logger="streams.kafka.batch_worker"):
        shell._commit_in_background()
        await asyncio.wait_for(shell.commits_settled(), 5.0)
        await asyncio.sleep(0)  # the task's done callbacks run in the next turn
    assert broken.asked == [{("md.ticks", 3): 17}]
    told = [r for r in caplog.records if r.name == "streams.kafka.batch_worker"]
    assert [r.getMessage() for r in told] == [
        "the periodic offset commit failed unexpectedly; the rounds go on: no such offset table"
    ]
    assert told[0].exc_info is not None
    assert told[0].exc_info[0] is LookupError
