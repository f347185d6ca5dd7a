"""Login throttling: token buckets per account and per client address, fed ``now``.

Each attempt takes one token from the account's bucket and one from the address's; an empty
bucket refuses the attempt and says when the next token comes (``Retry-After``). Buckets
refill continuously. A bucket that has refilled to its capacity is the same as no bucket, so
it may be forgotten: memory holds at most ``max_keys`` buckets per kind, and beyond that the
least recently used one is dropped (the oldest, so the likeliest to have refilled).

The state is in this process: several auth instances each limit on their own (the edge
limits per address in front of them all).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

DEFAULT_MAX_KEYS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    """``burst`` attempts at once, then one every ``every_s`` seconds."""

    burst: int
    every_s: float

    def __post_init__(self) -> None:
        if self.burst < 1 or not (math.isfinite(self.every_s) and self.every_s > 0):
            raise ValueError("a rate needs a burst of 1 or more and a positive period")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """One token bucket per key, all at the same :class:`Rate`."""

    def __init__(self, rate: Rate, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        self.rate = rate
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: it may now); takes nothing."""
        tokens = self._tokens(key, now)
        return 0.0 if tokens >= 1 else (1 - tokens) * self.rate.every_s

    def take(self, key: str, now: float) -> None:
        """Spend one of ``key``'s tokens (call :meth:`wait` first)."""
        tokens = self._tokens(key, now)
        self._buckets[key] = _Bucket(tokens - 1, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop ``key``'s bucket: it starts full again."""
        self._buckets.pop(key, None)

    def _tokens(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.rate.burst)
        refilled = bucket.tokens + max(0.0, now - bucket.at) / self.rate.every_s
        return min(float(self.rate.burst), refilled)


@dataclass(frozen=True, slots=True)
class LoginRates:
    per_account: Rate = Rate(burst=5, every_s=30.0)
    per_address: Rate = Rate(burst=20, every_s=3.0)


class LoginThrottle:
    """Login attempts per account and per client address."""

    def __init__(self, rates: LoginRates = LoginRates(), max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self._accounts = TokenBuckets(rates.per_account, max_keys)
        self._addresses = TokenBuckets(rates.per_address, max_keys)

    def attempt(self, account: str, address: str, now: float) -> float:
        """Record an attempt to log in to ``account`` from ``address`` at ``now``: 0 when it
        may go ahead (and is counted), else the seconds to wait (and it is not counted)."""
        wait = max(self._accounts.wait(account, now), self._addresses.wait(address, now))
        if wait > 0:
            return wait
        self._accounts.take(account, now)
        self._addresses.take(address, now)
        return 0.0

    def succeeded(self, account: str) -> None:
        """A successful login clears the account's count (its owner is back); the address's
        count stays (one address trying many accounts is what it limits)."""
        self._accounts.forget(account)
