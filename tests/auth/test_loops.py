"""The auth service's background loops outlive an error they did not foresee: a failure that
is not the database or the bus being away (here a read-only transaction, as after a failover
to a standby) is logged, the loop pauses and goes on. Before, such an error ended the relay
(revocations stayed in the outbox) or the pruner for the life of the process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from core.auth_events import AuthEvent, decode_event
from core.topics import AUTH_EVENTS
from streams.memory.bus import MemoryBus
from tests.auth.conftest import bearer, log_in, running, sign_up, with_settings


def failing_once(
    real: Callable[..., Awaitable[Any]],
) -> tuple[Callable[..., Awaitable[Any]], list[str]]:
    """``real``, but the first call fails as a standby refuses a write; the calls told."""
    calls: list[str] = []

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append("failed" if not calls else "ok")
        if calls == ["failed"]:
            raise psycopg.errors.ReadOnlySqlTransaction(
                "cannot execute UPDATE in a read-only transaction"
            )
        return await real(*args, **kwargs)

    return flaky, calls


async def test_the_relay_goes_on_after_an_unforeseen_database_error(
    migrated_database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bus = MemoryBus()
    subscription = bus.subscribe("test", [AUTH_EVENTS])
    async with running(migrated_database, bus=bus) as client:
        store = client.app.state.service.store  # type: ignore[attr-defined]
        flaky, calls = failing_once(store.mark_published)
        monkeypatch.setattr(store, "mark_published", flaky)
        await sign_up(client)
        owner = bearer(await log_in(client))
        made = await client.post(
            "/auth/v1/keys", json={"name": "b", "scopes": ["read"]}, headers=owner
        )
        key_id = made.json()["key_id"]
        assert (await client.delete(f"/auth/v1/keys/{key_id}", headers=owner)).status_code == 204
        events: list[AuthEvent] = []
        async with asyncio.timeout(5):
            while not _relay_lines(caplog) or "available again" not in _relay_lines(caplog)[-1]:
                events += [decode_event(r.value) for r in await subscription.poll(timeout=0.1)]
        events += [decode_event(r.value) for r in await subscription.poll(timeout=0.1)]
        assert calls == ["failed", "ok"]
        assert {(event.kind, event.subject) for event in events} == {
            ("key-revoked", f"key:{key_id}")
        }
        assert len(events) == 2  # published, not marked (the failure), published again
        assert await store.unpublished() == []
    first, last = [r for r in caplog.records if r.name == "auth.relay"]
    assert "(ReadOnlySqlTransaction: cannot execute UPDATE" in first.getMessage()
    assert first.exc_info is not None  # not the database away: the traceback, once
    assert last.getMessage().startswith("auth.events relay: database or bus available again")
    await subscription.close()
    await bus.close()


def _relay_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "auth.relay"]


async def test_the_pruner_goes_on_after_an_unforeseen_database_error(
    migrated_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(migrated_database, with_settings(prune_every_s=0.05)) as client:
        store = client.app.state.service.store  # type: ignore[attr-defined]
        flaky, calls = failing_once(store.prune)
        monkeypatch.setattr(store, "prune", flaky)
        await sign_up(client)
        ended = await log_in(client)
        await client.post("/auth/v1/logout", json={"refresh_token": ended["refresh_token"]})
        async with asyncio.timeout(5):
            while calls.count("ok") < 2:
                await asyncio.sleep(0.05)
        assert calls[0] == "failed"
