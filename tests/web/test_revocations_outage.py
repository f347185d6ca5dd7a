"""A service's revocations go on after the bus failed them: a subscription that cannot start
(the broker away when the consumer bootstraps) is tried again with backoff, told once and once
more when it works, the ``revocations`` readiness check says ``unavailable`` meanwhile, and a
revocation published later is applied."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Collection

import pytest

from access.grant import Grant
from access.settings import TokenSettings
from core.auth_events import AuthEvent, encode_event
from core.topics import AUTH_EVENTS
from streams.bus import BusError, Start
from streams.memory import MemoryBus
from streams.memory.bus import MemorySubscription
from streams.outage import Backoff
from telemetry.readiness import READINESS
from tests.support import tokens
from web.tokens import READY_CHECK, Revocations, TokenGate, checking


class FlakyBus(MemoryBus):
    """A bus whose first ``failures`` subscriptions fail as Kafka's do with no broker."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.attempts = 0

    def subscribe(
        self, group: str, topics: Collection[str], *, start: Start = "earliest"
    ) -> MemorySubscription:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise BusError(
                f"group {group} could not join: KafkaConnectionError: Unable to bootstrap"
            )
        return super().subscribe(group, topics, start=start)


def key_grant(key_id: str, now_s: int) -> Grant:
    return Grant.from_claims(tokens.claims(now=now_s, kind="key", principal=key_id).payload())


async def wait_until(holds: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not holds():
            await asyncio.sleep(0.01)


async def test_revocations_that_fail_to_start_are_retried_then_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = FlakyBus(failures=3)
    gate = TokenGate(TokenSettings(keys=tokens.keyset()), "history-api")
    follower = Revocations(gate, bus, backoff=Backoff(first=0.05, most=0.05))
    seen: list[str | None] = []
    with caplog.at_level(logging.WARNING, "web.tokens"):
        task = asyncio.create_task(follower.run())
        await wait_until(lambda: bus.attempts >= 1)
        seen.append("unavailable" if follower.failing else None)
        await wait_until(lambda: bus.attempts > 3 and not follower.failing)
        now_s = int(time.time())  # the gate drops a revocation whose end has passed
        event = AuthEvent(id=1, kind="key-revoked", subject="key:k_revoked", account_id=1,
                          plan=None, reason="", at=now_s, until=now_s + 300)  # fmt: skip
        await bus.topic(AUTH_EVENTS).publish(event.key(), encode_event(event))
        revoked = key_grant("k_revoked", now_s)
        await wait_until(lambda: gate.denylist.refuses(revoked, now_s))
        follower.stop()
        await asyncio.wait_for(task, 5)
    await bus.close()

    assert seen == ["unavailable"]
    assert not gate.denylist.refuses(key_grant("k_other", now_s), now_s)
    lines = [record.getMessage() for record in caplog.records]
    assert re.fullmatch(
        r"history-api: auth\.events unavailable \(group history-api\.revocations\.\w+ could not"
        r" join: KafkaConnectionError: Unable to bootstrap\); revocations wait; retrying",
        lines[0],
    ), lines[0]
    assert lines[1].startswith("history-api: auth.events available again after ")
    assert len(lines) == 2, lines  # not a line per attempt


async def test_stop_ends_the_revocations_while_the_bus_keeps_failing() -> None:
    """Before, :meth:`Revocations.stop` only stopped a processor that was not running: the loop
    slept its pause and subscribed again, for ever (only a cancel ended it)."""
    bus = FlakyBus(failures=1_000_000)
    gate = TokenGate(TokenSettings(keys=tokens.keyset()), "history-api")
    follower = Revocations(gate, bus, backoff=Backoff(first=60.0, most=60.0))
    task = asyncio.create_task(follower.run())
    await wait_until(lambda: follower.failing)  # in its pause of 30 s or more
    follower.stop()
    await asyncio.wait_for(task, 2)  # ended by stop(), not cancelled
    assert not task.cancelled()
    assert bus.attempts == 1
    await bus.close()


async def test_the_readiness_check_is_unavailable_while_the_revocations_fail() -> None:
    bus = FlakyBus(failures=1_000_000)
    gate = TokenGate(TokenSettings(keys=tokens.keyset()), "trading")
    assert READY_CHECK not in READINESS.checks()
    async with checking(gate, bus):
        assert READINESS.checks()[READY_CHECK] is None  # not failed yet
        await wait_until(lambda: READINESS.checks()[READY_CHECK] == "unavailable")
    assert READY_CHECK not in READINESS.checks()  # the app is gone: so is its check
    await bus.close()
