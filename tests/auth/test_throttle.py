"""Login throttling per account and per address, fed the time."""

from __future__ import annotations

import pytest

from auth.throttle import LoginRates, LoginThrottle, Rate, TokenBuckets

RATES = LoginRates(per_account=Rate(burst=3, every_s=10.0), per_address=Rate(burst=5, every_s=2.0))


def test_an_account_gets_its_burst_then_waits_for_the_next_token() -> None:
    throttle = LoginThrottle(RATES)
    assert [throttle.attempt("a@x.org", f"10.0.0.{i}", now=0.0) for i in range(3)] == [0.0] * 3
    assert throttle.attempt("a@x.org", "10.0.0.9", now=0.0) == pytest.approx(10.0)
    assert throttle.attempt("a@x.org", "10.0.0.9", now=4.0) == pytest.approx(6.0)
    assert throttle.attempt("a@x.org", "10.0.0.9", now=10.0) == 0.0
    assert throttle.attempt("b@x.org", "10.0.0.9", now=10.0) == 0.0  # another account: its own


def test_one_address_trying_many_accounts_is_limited() -> None:
    throttle = LoginThrottle(RATES)
    waits = [throttle.attempt(f"user{i}@x.org", "10.0.0.1", now=0.0) for i in range(6)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(2.0)
    assert throttle.attempt("user9@x.org", "10.0.0.2", now=0.0) == 0.0


def test_a_refused_attempt_costs_nothing_and_a_success_clears_the_account() -> None:
    throttle = LoginThrottle(RATES)
    for _ in range(3):
        throttle.attempt("a@x.org", "10.0.0.1", now=0.0)
    for _ in range(10):
        assert throttle.attempt("a@x.org", "10.0.0.1", now=1.0) > 0
    assert throttle.attempt("a@x.org", "10.0.0.1", now=10.0) == 0.0
    throttle.succeeded("a@x.org")
    assert throttle.attempt("a@x.org", "10.0.0.2", now=10.0) == 0.0


def test_buckets_stay_within_their_bound() -> None:
    buckets = TokenBuckets(Rate(burst=1, every_s=60.0), max_keys=100)
    for i in range(1_000):
        buckets.take(f"k{i}", now=float(i))
    assert len(buckets) == 100
    assert buckets.wait("k999", now=999.0) > 0
    assert buckets.wait("k0", now=999.0) == 0.0  # forgotten: as if full


def test_a_rate_is_checked() -> None:
    with pytest.raises(ValueError, match="a rate needs"):
        Rate(burst=0, every_s=1.0)
