"""Waiting for a broker: one clear line per failed attempt, growing pauses, then success or a
clear error."""

from __future__ import annotations

import pytest

from machine import free_port
from streams.kafka.bus import probe
from streams.kafka.retry import BrokerUnavailableError, backoff_delays, until_reachable


def test_pauses_grow_to_a_ceiling() -> None:
    assert backoff_delays(0.5, 8.0) == [0.5, 1.0, 2.0, 4.0, 8.0]


async def test_a_broker_that_comes_up_is_used_after_the_retries() -> None:
    told: list[str] = []
    attempts = 0

    async def attempt() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("Connection refused")
        return "connected"

    result = await until_reachable(attempt, "h:1", timeout=None, say=told.append, first=0.01)
    assert result == "connected"
    assert told == [
        "Kafka at h:1 is not reachable (Connection refused); retrying in 0.01s",
        "Kafka at h:1 is not reachable (Connection refused); retrying in 0.02s",
    ]


async def test_a_broker_that_stays_away_ends_in_a_clear_error() -> None:
    async def attempt() -> None:
        probe([f"127.0.0.1:{free_port()}"], timeout=0.5)

    with pytest.raises(BrokerUnavailableError, match=r"no Kafka broker answered at x:1 within"):
        await until_reachable(attempt, "x:1", timeout=0.3, say=lambda _: None, first=0.1)


async def test_other_errors_are_not_retried() -> None:
    async def attempt() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await until_reachable(attempt, "x:1", timeout=None, say=lambda _: None)
