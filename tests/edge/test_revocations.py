"""Revocations reach a running edge without a reload: ``auth.events`` on the bus, into the map
of revoked subjects through HAProxy's runtime API; the map file keeps them over a reload."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from auth.signing import SigningKey
from core.auth_events import AuthEvent, encode_event
from core.topics import AUTH_EVENTS
from edge.config import VERIFIED_TABLE
from edge.revocations import RevocationFeed
from edge.runtime import Runtime

from .conftest import TIMEOUT, Stack, claims, eventually, get, sign
from .test_edge import assert_problem


@pytest.fixture
async def fed(keyed: tuple[Stack, SigningKey]) -> AsyncIterator[tuple[Stack, SigningKey, Runtime]]:
    """The keyed stack with a :class:`RevocationFeed` following the stack's bus."""
    stack, key = keyed
    runtime = Runtime(stack.settings.runtime_socket)
    feed = RevocationFeed(stack.bus, runtime, stack.settings.revocation_map)
    task = asyncio.create_task(feed.run())
    try:
        yield stack, key, runtime
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def revoke(stack: Stack, kind: str, subject: str, lasts: int = 300) -> None:
    now = int(time.time())
    event = AuthEvent(
        id=now, kind=kind, subject=subject, account_id=7, plan=None, reason="", at=now,  # type: ignore[arg-type]
        until=now + lasts,
    )  # fmt: skip
    await stack.bus.topic(AUTH_EVENTS).publish(event.key(), encode_event(event))


async def generation(stack: Stack) -> str:
    admin = stack.settings
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        url = f"http://{admin.admin_host}:{admin.admin_port}/generation"
        return (await client.get(url)).text


async def refused_within(stack: Stack, token: str, seconds: float) -> float:
    """How long after now the edge starts refusing ``token`` (fails after ``seconds``)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        answer = await get(stack, "/echo", token)
        if answer.status_code == 401:
            assert_problem(answer, 401, "invalid-token")
            assert "revoked" in answer.json()["detail"]
            return time.monotonic() - start
        assert answer.status_code == 200, answer.text
    raise AssertionError(f"the token still passes {seconds}s after its revocation")


async def test_a_revoked_key_is_refused_within_a_second_without_a_reload(
    fed: tuple[Stack, SigningKey, Runtime],
) -> None:
    stack, key, _ = fed
    token = sign(key, claims(sub="key:k_0001", acct=7, sid=""))
    other = sign(key, claims(sub="key:k_0002", acct=8, sid=""))
    assert (await get(stack, "/echo", token)).status_code == 200
    pid, before = stack.edge.pid, await generation(stack)
    await revoke(stack, "key-revoked", "key:k_0001")
    assert await refused_within(stack, token, 1.0) < 1.0
    assert (await get(stack, "/echo", other)).status_code == 200
    assert stack.edge.pid == pid
    assert await generation(stack) == before  # the same configuration: no reload


async def test_sessions_and_accounts_are_revoked_by_their_claims(
    fed: tuple[Stack, SigningKey, Runtime],
) -> None:
    stack, key, _ = fed
    session = sign(key, claims(sub="account:7", acct=7, sid="f_abc"))
    other_session = sign(key, claims(sub="account:7", acct=7, sid="f_def"))
    owned_key = sign(key, claims(sub="key:k_0009", acct=8, sid=""))
    account = sign(key, claims(sub="account:8", acct=8, sid="f_xyz"))
    await revoke(stack, "session-revoked", "session:f_abc")
    await refused_within(stack, session, 1.0)
    assert (await get(stack, "/echo", other_session)).status_code == 200
    await revoke(stack, "account-disabled", "account:8")
    for token in (owned_key, account):  # a key's token by its acct, the account's by its sub
        await refused_within(stack, token, 1.0)
    # a plan change stops no token
    await revoke(stack, "entitlements-changed", "account:7")
    await asyncio.sleep(0.5)
    assert (await get(stack, "/echo", other_session)).status_code == 200


async def test_revocations_outlive_a_reload_and_end_at_their_time(
    fed: tuple[Stack, SigningKey, Runtime],
) -> None:
    stack, key, runtime = fed
    lasting = sign(key, claims(sub="key:k_0003", acct=7, sid=""))
    brief = sign(key, claims(sub="key:k_0004", acct=7, sid=""))
    await revoke(stack, "key-revoked", "key:k_0003")
    await revoke(stack, "key-revoked", "key:k_0004", lasts=2)
    for token in (lasting, brief):
        await refused_within(stack, token, 1.0)
    saved = stack.settings.revocation_map.read_text()
    assert "key:k_0003 " in saved
    assert "key:k_0004 " in saved
    await stack.reload()  # a new worker reads the map file
    assert (await get(stack, "/echo", lasting)).status_code == 401

    async def brief_passes_again() -> bool:
        return (await get(stack, "/echo", brief)).status_code == 200

    await eventually(brief_passes_again, timeout=5)
    assert (await get(stack, "/echo", lasting)).status_code == 401

    async def dropped() -> bool:
        running = await runtime.show_map(stack.settings.revocation_map)
        return "key:k_0004" not in running and "key:k_0003" in running

    await eventually(dropped, timeout=5)
    assert "key:k_0004" not in stack.settings.revocation_map.read_text()


async def test_a_malformed_event_or_subject_changes_nothing(
    fed: tuple[Stack, SigningKey, Runtime],
) -> None:
    stack, key, runtime = fed
    topic = stack.bus.topic(AUTH_EVENTS)
    await topic.publish(b"x", b"not json")
    await revoke(stack, "key-revoked", "key:k_1 ; clear map")  # a second command, smuggled
    await revoke(stack, "key-revoked", "account:7")  # a kind that does not match its subject
    await revoke(stack, "key-revoked", "key:k_0005")
    await refused_within(stack, sign(key, claims(sub="key:k_0005")), 1.0)
    running = await runtime.show_map(stack.settings.revocation_map)
    assert set(running) == {"key:k_0005"}
    assert (await get(stack, "/echo", sign(key, claims(sub="account:7")))).status_code == 200


async def verified(runtime: Runtime) -> set[str]:
    """The SHA-256 (hex) of each token in the edge's table of verified tokens."""
    answer = await runtime.execute("show", "table", VERIFIED_TABLE)
    return {word[4:].lower() for word in answer.split() if word.startswith("key=")}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def test_a_verified_token_is_remembered_and_still_checked_on_every_request(
    fed: tuple[Stack, SigningKey, Runtime],
) -> None:
    stack, key, runtime = fed
    token = sign(key, claims(sub="key:k_0003", acct=9, sid="", exp=int(time.time()) + 3))
    assert (await get(stack, "/echo", token)).status_code == 200
    assert (await get(stack, "/echo", token)).status_code == 200
    assert await verified(runtime) == {digest(token)}  # stored once, by the whole token's hash
    head, _, signature = token.split(".")
    for escalated in (claims(sub="account:1"), claims(sub="key:k_0003", rpm=10**6)):
        edited = f"{head}.{sign(key, escalated).split('.')[1]}.{signature}"
        assert_problem(await get(stack, "/echo", edited), 401, "invalid-token")
    assert await verified(runtime) == {digest(token)}  # an edited token is never stored
    await revoke(stack, "key-revoked", "key:k_0003")
    await refused_within(stack, token, 1.0)  # refused though remembered
    expires = int(time.time()) + 2
    other = sign(key, claims(sub="key:k_0004", acct=9, sid="", exp=expires))
    assert (await get(stack, "/echo", other)).status_code == 200
    await asyncio.sleep(expires + 1 - time.time())
    assert digest(other) in await verified(runtime)
    assert_problem(await get(stack, "/echo", other), 401, "token-expired")  # remembered, expired
