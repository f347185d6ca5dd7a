"""Reconnect delays: exponential, capped, fully jittered, reset after a healthy connection."""

from __future__ import annotations

import random

import pytest

from ingest.venues.backoff import Backoff


def test_the_cap_doubles_per_attempt_up_to_the_maximum() -> None:
    backoff = Backoff(0.5, 5.0, rng=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_every_delay_is_drawn_between_zero_and_the_cap() -> None:
    draws = iter([0.0, 0.25, 0.999])
    backoff = Backoff(1.0, 60.0, rng=lambda: next(draws))
    assert [backoff.next_delay() for _ in range(3)] == [0.0, 0.5, 0.999 * 4]


def test_a_reset_starts_the_delays_from_the_beginning() -> None:
    backoff = Backoff(1.0, 8.0, rng=lambda: 1.0)
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_the_delays_stay_bounded_after_very_many_attempts() -> None:
    backoff = Backoff(0.1, 30.0, rng=random.Random(7).random)
    delays = [backoff.next_delay() for _ in range(10_000)]
    assert max(delays) <= 30.0
    assert backoff.cap() == 30.0


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
def test_nonsense_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial, maximum)
