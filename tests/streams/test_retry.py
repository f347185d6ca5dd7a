"""A start waits for a dependency that is away: tried again with backoff, logged once, and
given up with the last error only after its time."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

import pytest

from storage.unavailable import DatabaseUnavailableError
from streams.outage import Backoff
from streams.retry import StoppedError, until_available


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def failing(
    times: int, clock: Clock, step: float = 1.0
) -> tuple[list[float], Callable[[], Awaitable[str]]]:
    calls: list[float] = []

    async def attempt() -> str:
        calls.append(clock.now)
        clock.now += step
        if len(calls) <= times:
            raise DatabaseUnavailableError("connection refused")
        return "loaded"

    return calls, attempt


async def test_an_attempt_that_fails_a_while_is_tried_again_until_it_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    calls, attempt = failing(3, clock)
    with caplog.at_level(logging.WARNING, "streams.retry"):
        result = await until_available(
            attempt, "database", within_s=60, backoff=Backoff(first=0.001, most=0.002), clock=clock
        )
    assert result == "loaded"
    assert len(calls) == 4
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "database unavailable (connection refused); waiting for it"
    assert lines[-1].startswith("database available again after ")
    assert len(lines) == 2  # not a line per attempt


async def test_it_gives_up_with_the_last_error_after_its_time() -> None:
    clock = Clock()
    calls, attempt = failing(1_000, clock, step=10.0)
    with pytest.raises(DatabaseUnavailableError, match="connection refused"):
        await until_available(
            attempt, "database", within_s=35, backoff=Backoff(first=0.001, most=0.002), clock=clock
        )
    assert len(calls) == 4  # at 0, 10, 20 and 30, which fails past the deadline


async def test_other_errors_are_not_retried() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await until_available(attempt, "database")
    assert calls == 1


async def test_an_error_of_unless_is_raised_at_once_though_retry_on_names_its_kind() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise FileNotFoundError("the caller's to mend")

    with pytest.raises(FileNotFoundError):
        await until_available(
            attempt, "disk", within_s=math.inf, retry_on=(OSError,), unless=(FileNotFoundError,)
        )
    assert calls == 1


async def test_the_errors_retried_and_the_lines_are_the_caller_s() -> None:
    clock = Clock()
    said: list[str] = []
    tries = 0

    async def attempt() -> str:
        nonlocal tries
        tries += 1
        clock.now += 1.0
        if tries < 3:
            raise OSError("refused")
        return "open"

    result = await until_available(
        attempt,
        "the database",
        backoff=Backoff(first=0.001, most=0.002),
        clock=clock,
        retry_on=(OSError,),
        describe=lambda exc: f"cannot use it: {exc}",
        then="trying again for up to 60 s",
        say=said.append,
    )
    assert result == "open"
    assert (
        said[0] == "the database unavailable (cannot use it: refused); trying again for up to 60 s"
    )
    assert said[1].startswith("the database available again after ")
    assert len(said) == 2


async def test_a_stop_during_a_pause_ends_the_wait() -> None:
    stop = asyncio.Event()
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        asyncio.get_running_loop().call_later(0.01, stop.set)
        raise DatabaseUnavailableError("connection refused")

    began = time.monotonic()
    with pytest.raises(StoppedError, match=r"^stopped while waiting for database$"):
        await until_available(
            attempt, "database", backoff=Backoff(first=30, most=30), say=lambda _: None, stop=stop
        )
    assert calls == 1
    assert time.monotonic() - began < 5  # the 15-30 s pause was cut short
