"""A trading consumer rides out an outage of the event store that leaves the service sound:
told once, its round taken again with backoff, and, once it has run a while since it
subscribed again, the end of the outage told (before, that line was computed and dropped)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any, cast

import pytest

from streams.outage import Backoff
from streams.processor import Processor
from trading.process import _consume
from trading.service.shell import TradingService
from trading.store.errors import StoreUnavailableError


class FlakyProcessor:
    """A consumer whose first ``failures`` runs fail as the store does when it is away; the
    next one runs until stopped."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise StoreUnavailableError("cannot use the event store: connection refused")
        await self.stopped.wait()


async def test_the_end_of_an_outage_is_told_once_the_consumer_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor = FlakyProcessor(failures=3)
    service = cast(TradingService, SimpleNamespace(unsound=None))
    stopping = asyncio.Event()
    with caplog.at_level(logging.WARNING, "trading.process"):
        consuming = _consume(
            "trading.commands", cast(Processor[Any], processor), service, stopping,
            Backoff(first=0.01, most=0.01), recovered_after=0.1,
        )  # fmt: skip
        task = asyncio.create_task(consuming)
        async with asyncio.timeout(5):
            while not any("available again" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.01)
        stopping.set()
        processor.stopped.set()
        await asyncio.wait_for(task, 5)
    lines = [r.getMessage() for r in caplog.records if r.name == "trading.process"]
    assert lines[0] == (
        "trading.commands: the event store unavailable (store-unavailable: cannot use the event"
        " store: connection refused); taking the round again with backoff"
    )
    assert lines[1].startswith("trading.commands: the event store available again after ")
    assert len(lines) == 2, lines
    assert processor.runs == 4
    assert all(r.exc_info is None for r in caplog.records)  # expected: no traceback
