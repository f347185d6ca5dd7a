"""When to try again, and what to tell, while a store is away."""

from __future__ import annotations

import random

import pytest

from streams.outage import Backoff, OutageLog


def test_backoff_grows_to_its_cap_with_jitter_and_starts_over_after_a_success() -> None:
    backoff = Backoff(first=1.0, most=8.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    steps = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(step / 2 <= d <= step for d, step in zip(delays, steps, strict=True))
    assert len(set(delays)) == len(delays)  # jittered: no two clients in lockstep
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="first <= most"):
        Backoff(first=2.0, most=1.0)


def test_an_outage_is_told_once_then_at_a_bounded_rate_then_its_end() -> None:
    log = OutageLog("database", every=30.0)
    told = [log.failed(t / 10, "connection refused") for t in range(0, 900)]  # 90 s, 10/s
    lines = [line for line in told if line is not None]
    assert lines[0] == "database unavailable (connection refused); retrying with backoff"
    assert len(lines) == 3  # at 0, 30 and 60 s: not one per attempt
    assert lines[1].startswith("database still unavailable after 30s (301 attempts")
    assert log.ongoing
    assert log.recovered(91.5) == "database available again after 91.5s"
    assert not log.ongoing
    assert log.recovered(92.0) is None
    assert log.failed(100.0, "gone") == "database unavailable (gone); retrying with backoff"
