"""The webhooks' settings: whether this process sends them, which hosts endpoints may name,
the retry schedule and the bounds of one attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from main_api.webhooks.schedule import RetrySchedule
from main_api.webhooks.urls import IPNetwork

MAX_RESPONSE_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """``worker``: run the delivery worker in this main API process (several processes may:
    they share the work). ``allow_private_hosts``: let endpoints name loopback or private
    hosts (off by default; tests and a single-machine setup turn it on)."""

    worker: bool = True
    allow_private_hosts: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    """Addresses endpoints may reach although they are not public, every other rule kept
    (narrower than ``allow_private_hosts``: a test lets its receiver's 127.0.0.1 through and
    nothing else)."""
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    timeout_s: float = 10.0
    """The whole attempt (connect, send, the answer's head and the bounded read of its
    body)."""
    max_response_bytes: int = MAX_RESPONSE_BYTES
    """How much of an answer's body is read (then the connection is dropped)."""
    batch: int = 32
    """The most attempts in flight at once (at most one per endpoint)."""
    poll_s: float = 5.0
    """The longest wait between rounds when no notification comes."""
    retry_s: float = 1.0
    """The wait after the database failed, before trying again."""
    lease_s: float = 30.0
    """How long a claimed delivery is held beyond the attempt's timeout; a worker that dies
    mid-attempt leaves it due again after this."""
    rotation_overlap_s: int = 86_400
    """How long a rotated-out secret still signs (alongside the new one)."""
    keep_delivered_s: float = 7 * 86_400
    """How long a delivered delivery is kept (listed) after it was delivered."""
    keep_dead_s: float = 30 * 86_400
    """How long a dead letter is kept (listed, replayable) after it died."""
    prune_s: float = 60.0
    """How often the worker deletes what is kept no longer."""
    prune_batch: int = 1000
    """The most rows of each kind deleted by one statement (then again at once while a
    batch comes back full)."""

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.poll_s <= 0 or self.retry_s <= 0 or self.lease_s <= 0:
            raise ValueError("webhook timeouts and waits must be above 0")
        if not 1 <= self.batch <= 1000 or self.max_response_bytes < 1:
            raise ValueError("webhook batch is 1 to 1000, max_response_bytes at least 1")
        if min(self.keep_delivered_s, self.keep_dead_s, self.prune_s) <= 0:
            raise ValueError("webhook retention and prune_s must be above 0")
        if not 1 <= self.prune_batch <= 100_000:
            raise ValueError("webhook prune_batch is 1 to 100,000")
