"""The auth service when its database stops (503 problem+json, then back by itself) and
what it publishes on auth.events."""

from __future__ import annotations

import asyncio
import time

import httpx

from core.auth_events import AuthEvent, decode_event
from core.topics import AUTH_EVENTS
from streams.bus import Subscription
from streams.memory.bus import MemoryBus
from tests.auth.conftest import bearer, code_of, log_in, running, sign_up
from tests.storage.stoppable import StoppablePostgres


async def test_a_stopped_database_gives_503_and_the_service_comes_back(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database()
    async with running(url, wait=1.0) as client:
        await sign_up(client)
        session = await log_in(client)
        stoppable_postgres.stop()
        for answer in (
            await client.post("/auth/v1/login", json={"email": "a@x.org", "password": "x" * 12}),
            await client.post("/auth/v1/refresh", json={"refresh_token": session["refresh_token"]}),
            await client.get("/auth/v1/keys", headers=bearer(session)),
        ):  # fmt: skip
            assert (answer.status_code, code_of(answer)) == (503, "database-unavailable")
            assert answer.headers["Retry-After"] == "5"
            assert "password" not in answer.json()["detail"]
        for path in ("/auth/readyz", "/readyz"):  # the shape every service's has (web.health)
            ready = await client.get(path)
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"database": "unavailable"}
            assert ready.headers["Retry-After"] == "5"
        jwks = await client.get("/auth/.well-known/jwks.json")  # the keys known still verify
        assert jwks.status_code == 200
        assert len(jwks.json()["keys"]) == 1
        stoppable_postgres.start()
        async with asyncio.timeout(30):
            while (await client.get("/auth/readyz")).status_code != 200:
                await asyncio.sleep(0.2)
        again = await client.post(
            "/auth/v1/refresh", json={"refresh_token": session["refresh_token"]}
        )
        assert again.status_code == 200
        assert (await client.get("/auth/v1/keys", headers=bearer(again.json()))).status_code == 200


async def _next_events(subscription: Subscription, count: int) -> list[AuthEvent]:
    events: list[AuthEvent] = []
    async with asyncio.timeout(5):
        while len(events) < count:
            records = await subscription.poll(timeout=0.1)
            events += [decode_event(record.value) for record in records]
    return events


async def test_revocations_and_plan_changes_are_published_on_auth_events(
    migrated_database: str,
) -> None:
    bus = MemoryBus()
    subscription = bus.subscribe("test", [AUTH_EVENTS])
    async with running(migrated_database, bus=bus) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        await sign_up(client)
        session = await log_in(client)
        owner = bearer(session)
        made = await client.post(
            "/auth/v1/keys", json={"name": "b", "scopes": ["read"]}, headers=owner
        )
        key_id = made.json()["key_id"]
        await client.delete(f"/auth/v1/keys/{key_id}", headers=owner)
        (revoked,) = await _next_events(subscription, 1)
        assert (revoked.kind, revoked.subject) == ("key-revoked", f"key:{key_id}")
        assert revoked.until >= revoked.at + service.settings.access_ttl_s

        second = await client.post(
            "/auth/v1/refresh", json={"refresh_token": session["refresh_token"]}
        )
        assert second.status_code == 200
        await client.post("/auth/v1/refresh", json={"refresh_token": session["refresh_token"]})
        (reused,) = await _next_events(subscription, 1)
        assert (reused.kind, reused.reason) == ("session-revoked", "reuse")

        await service.set_plan("ada@example.org", "pro")
        (changed,) = await _next_events(subscription, 1)
        assert (changed.kind, changed.plan) == ("entitlements-changed", "pro")
        pro = service.settings.plans.get("pro")
        assert changed.claims is not None
        assert (changed.claims.plan, changed.claims.delay, changed.claims.rpm) == (
            "pro",
            pro.delay_s,
            pro.requests_per_minute,
        )
        assert changed.claims.instruments == " ".join(pro.instruments)
        assert (revoked.claims, reused.claims) == (None, None)
        assert (await log_in(client))["plan"] == "pro"

        await service.store.disable_account("ada@example.org", until=0)  # as another process
        (disabled,) = await _next_events(subscription, 1)
        assert disabled.kind == "account-disabled"
        assert disabled.id > changed.id > reused.id > revoked.id
        refused = await client.post(
            "/auth/v1/login", json={"email": "ada@example.org", "password": "correct horse battery"}
        )
        assert (refused.status_code, code_of(refused)) == (403, "account-disabled")
    await subscription.close()
    await bus.close()


async def test_an_api_key_of_a_disabled_account_gets_no_token(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    owner = bearer(await log_in(client))
    made = await client.post(
        "/auth/v1/keys", json={"name": "b", "scopes": ["trade"]}, headers=owner
    )
    await client.app.state.service.disable_account("ada@example.org")  # type: ignore[attr-defined]
    answer = await client.post("/auth/v1/token", json={"api_key": made.json()["api_key"]})
    assert (answer.status_code, code_of(answer)) == (403, "account-disabled")


async def test_dead_sessions_are_pruned_and_live_ones_kept(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    live = await log_in(client)
    ended = await log_in(client)
    await client.post("/auth/v1/logout", json={"refresh_token": ended["refresh_token"]})
    store = client.app.state.service.store  # type: ignore[attr-defined]
    policy = client.app.state.service.settings.refresh  # type: ignore[attr-defined]
    now = int(time.time())
    assert await store.prune(now) == 0  # the ended session's token has not expired yet
    assert await store.prune(now + policy.token_ttl_s + 1) == 1
    assert await store.prune(now + policy.family_ttl_s + 1) == 1
    gone = await client.post("/auth/v1/refresh", json={"refresh_token": live["refresh_token"]})
    assert (gone.status_code, code_of(gone)) == (401, "invalid-refresh-token")
