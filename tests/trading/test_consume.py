"""A trading consumer rides out an outage of the event store that leaves the service sound:
told once, its round taken again with backoff, and, once that round has gone through, the
end of the outage told (an empty poll after subscribing again is no sign of it)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import cast

import pytest

from core import codecs
from core.topics import TICKS, TRADING_COMMANDS
from streams.bus import Offsets
from streams.memory import MemoryBus
from streams.outage import Backoff
from streams.processor import Batch, Durability, Outcome, Processor, Round
from tests.storage import factories
from trading.process import _consume, _outage_over, _store_failures
from trading.service.shell import TradingService
from trading.store.errors import StoreUnavailableError

SOUND = cast(TradingService, SimpleNamespace(unsound=None))


class StoreAway(Durability[None]):
    """A hook whose store is away for the first ``failures`` rounds that took records."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rounds = 0

    async def behind(self, round: Round[None]) -> Offsets:
        if round.polled:
            self.rounds += 1
            if self.rounds <= self.failures:
                raise StoreUnavailableError("cannot use the event store: connection refused")
        return round.offsets


def nothing(batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
    return Outcome([], None)


def told(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "trading.process"]


async def test_the_end_of_an_outage_is_told_once_the_round_it_broke_goes_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = _store_failures(TRADING_COMMANDS, Backoff(first=0.01, most=0.01))
    hook = StoreAway(failures=3)
    stopping = asyncio.Event()
    async with MemoryBus(partitions=1) as bus:
        tick = factories.batch(factories.tick(1, 10**9))
        await bus.topic(TICKS).publish(b"k", codecs.encode_tick_batch(tick))
        processor = Processor(
            bus, "test-consume", [TICKS], nothing, hook, poll_timeout=0.01,
            went_through=_outage_over(failures),
        )  # fmt: skip
        with caplog.at_level(logging.WARNING, "trading.process"):
            task = asyncio.create_task(_consume(processor, SOUND, stopping, failures))
            async with asyncio.timeout(5):
                while len(told(caplog)) < 2:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # the rounds after it (empty polls) tell nothing more
            stopping.set()
            processor.stop()
            await asyncio.wait_for(task, 5)
    lines = told(caplog)
    assert lines[0] == (
        "trading.commands: the event store unavailable (store-unavailable: cannot use the event"
        " store: connection refused); taking the round again with backoff"
    )
    assert lines[1].startswith("trading.commands: the event store available again after ")
    assert len(lines) == 2, lines
    assert hook.rounds == 4  # three broken, the fourth through
    assert all(r.exc_info is None for r in caplog.records)  # expected: no traceback


def test_an_empty_round_after_an_outage_does_not_end_it(caplog: pytest.LogCaptureFixture) -> None:
    failures = _store_failures(TRADING_COMMANDS)
    went_through = _outage_over(failures)
    with caplog.at_level(logging.WARNING, "trading.process"):
        failures.failed(StoreUnavailableError("connection refused"))
        went_through(0)  # subscribed again, polled nothing: the bus answers, the store unknown
        assert failures.failing
        went_through(3)
        assert not failures.failing
        went_through(3)  # no outage: nothing to tell
    assert [line.split(" after ")[0] for line in told(caplog)[1:]] == [
        "trading.commands: the event store available again"
    ]
