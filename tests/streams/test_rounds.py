"""A background loop's failed rounds: told once per outage (a traceback for the unforeseen),
then a growing pause, and the end of the outage told when a round succeeds."""

from __future__ import annotations

import logging
import random

import pytest

from streams.outage import Backoff
from streams.rounds import RoundFailures

LOG = logging.getLogger("tests.rounds")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _failures(clock: Clock) -> RoundFailures:
    backoff = Backoff(first=1.0, most=4.0, rng=random.Random(3))
    return RoundFailures("relay", LOG, expected=(ConnectionError,), backoff=backoff, clock=clock)


def test_an_unforeseen_error_is_told_once_with_its_traceback_and_the_pause_grows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = _failures(clock)
    pauses = []
    for _ in range(5):
        pauses.append(failures.failed(KeyError("plan")))
        clock.now += 1.0
    (told,) = caplog.records
    assert told.getMessage() == "relay unavailable (KeyError: 'plan'); retrying with backoff"
    assert told.exc_info is not None
    assert all(step / 2 <= p <= step for p, step in zip(pauses, [1, 2, 4, 4, 4], strict=True))
    failures.succeeded()
    assert caplog.records[-1].getMessage() == "relay available again after 5.0s"
    assert failures.failed(KeyError("plan")) <= 1.0  # a new outage starts from the shortest


def test_an_expected_error_is_told_without_a_traceback_and_a_long_one_every_30_s(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = _failures(clock)
    for _ in range(70):
        failures.failed(ConnectionRefusedError("connection refused"))
        clock.now += 1.0
    assert [record.exc_info for record in caplog.records] == [None, None, None]
    assert caplog.records[1].getMessage().startswith("relay still unavailable after 30s")


def test_a_success_outside_an_outage_tells_nothing(caplog: pytest.LogCaptureFixture) -> None:
    _failures(Clock()).succeeded()
    assert caplog.records == []
