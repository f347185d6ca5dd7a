"""Access tokens over real sockets: every refused token, presented each of the four ways, is
never anonymous; revocations on ``auth.events`` close connections (4403) within a second; a
plan change drops what it no longer covers; a delayed plan gets no candle younger than the
delay (on an injected clock)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from core.auth_events import EventKind
from tests.support.tokens import PLANS, code_of, issue, key_token, refused_tokens
from ws_gateway import Gateway

from .harness import (
    client,
    close_frame,
    publish,
    recv,
    recv_type,
    request,
    subscribe,
    until,
)
from .market import BTC, ETH, final, updates
from .revocations import KEY_ID, gateway_with_tokens, plan_claims, revoke

NS = 1_000_000_000
DELAY = 900


# -- the four ways of presenting a token ------------------------------------------------------


Present = Callable[[Gateway, str], Awaitable[tuple[int, str]]]
"""Presents a token; the close code (or HTTP status) and the message it was refused with."""


async def by_query(gateway: Gateway, token: str) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as refused:
        async with client(gateway, f"/ws?token={token}"):
            pass
    response = refused.value.response
    return response.status_code, response.body.decode()


async def by_header(gateway: Gateway, token: str) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as refused:
        async with client(gateway, additional_headers={"Authorization": f"Bearer {token}"}):
            pass
    response = refused.value.response
    return response.status_code, response.body.decode()


async def told_and_closed(ws: ClientConnection) -> tuple[int, str]:
    error = await recv_type(ws, "error")
    assert (error["code"], error["field"]) == ("unauthorized", "token")
    closed = await close_frame(ws)
    return closed.code, error["message"]


async def by_subprotocol(gateway: Gateway, token: str) -> tuple[int, str]:
    async with client(gateway, subprotocols=["mdp.v1", f"mdp.token.{token}"]) as ws:
        assert ws.subprotocol == "mdp.v1"
        return await told_and_closed(ws)


async def by_auth_frame(gateway: Gateway, token: str) -> tuple[int, str]:
    async with client(gateway) as ws:
        await request(ws, op="auth", id=1, token=token)
        return await told_and_closed(ws)


WAYS: dict[str, tuple[Present, int]] = {
    "query": (by_query, 401),
    "header": (by_header, 401),
    "subprotocol": (by_subprotocol, 4401),
    "auth-frame": (by_auth_frame, 4401),
}


@pytest.mark.parametrize("way", sorted(WAYS))
async def test_every_refused_token_is_refused_each_way_and_never_anonymous(way: str) -> None:
    present, refusal = WAYS[way]
    async with gateway_with_tokens(anonymous="demo") as (bus, gateway):
        cases = refused_tokens()
        for case, token in cases.items():
            status, message = await present(gateway, token)
            assert (case, status) == (case, refusal)
            assert message.startswith(f"{code_of(case)}: "), (case, message)
        await revoke(bus, "key-revoked", f"key:{KEY_ID}")
        await until(lambda: len(gateway.denylist) == 1)
        status, message = await present(gateway, key_token(KEY_ID))
        assert status == refusal
        assert message.startswith("revoked: ")
        assert gateway.stats.refused == len(cases) + 1
        assert gateway.clients == 0


async def test_a_valid_token_is_taken_each_way() -> None:
    token = issue(plan="pro")
    async with gateway_with_tokens(anonymous=None) as (_, gateway):
        async with client(gateway, f"/ws?token={token}") as ws:
            assert (await subscribe(ws, ETH))[0]["type"] == "subscribed"
        async with client(gateway, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert (await subscribe(ws, ETH))[0]["type"] == "subscribed"
        async with client(gateway, subprotocols=["mdp.v1", f"mdp.token.{token}"]) as ws:
            assert ws.subprotocol == "mdp.v1"
            assert (await subscribe(ws, ETH))[0]["type"] == "subscribed"
        async with client(gateway) as ws:
            await request(ws, op="auth", id=7, token=token)
            answer = await recv_type(ws, "authenticated")
            assert (answer["id"], answer["plan"], answer["delay"]) == (7, "pro", 0)
            assert answer["expires"] > time.time()
            assert (await subscribe(ws, ETH))[0]["type"] == "subscribed"


async def test_an_auth_frame_renews_a_token_before_it_expires() -> None:
    brief = issue(ttl_s=1)  # expires within a second
    async with (
        gateway_with_tokens(heartbeat=0.1) as (_, gateway),
        client(gateway, f"/ws?token={brief}") as renewed,
        client(gateway, f"/ws?token={brief}") as left,
    ):
        await request(renewed, op="auth", id=1, token=issue())
        answer = await recv_type(renewed, "authenticated")
        assert answer["expires"] > time.time() + 60
        closed = await close_frame(left, timeout=3.0)
        assert (closed.code, closed.reason) == (4401, "token expired")
        await request(renewed, op="ping", id=2)
        assert (await recv_type(renewed, "pong"))["id"] == 2  # outlived its first token
        await request(renewed, op="auth", id=3, token=issue(account_id=9, principal=9))
        other = await recv_type(renewed, "error")
        assert (other["id"], other["code"], other["field"]) == (3, "forbidden", "token")


async def test_a_token_subprotocol_needs_mdp_v1_beside_it() -> None:
    async with gateway_with_tokens() as (_, gateway):
        with pytest.raises(InvalidStatus) as refused:
            async with client(gateway, subprotocols=[f"mdp.token.{issue()}"]):
                pass
        assert refused.value.response.status_code == 400
        async with client(gateway, subprotocols=["mdp.v1"]) as ws:  # no token: anonymous
            assert ws.subprotocol == "mdp.v1"


async def test_anonymous_clients_get_the_anonymous_plan() -> None:
    async with (
        gateway_with_tokens(anonymous="demo") as (_, gateway),
        client(gateway) as ws,
    ):
        await request(
            ws, op="subscribe", id=1, channel="candles", instrument="KRAKEN:ETH/USD", interval="1m"
        )
        refused = await recv_type(ws, "error")
        assert (refused["code"], refused["field"]) == ("forbidden", "instrument")
        assert (await subscribe(ws, BTC))[0]["type"] == "subscribed"  # SYNTH:* is the demo's


async def test_a_plans_connections_are_counted_across_the_gateway() -> None:
    token = issue(plan="demo")  # ws_conns 2
    assert PLANS.get("demo").ws_connections == 2
    async with (
        gateway_with_tokens() as (_, gateway),
        client(gateway, f"/ws?token={token}"),
        client(gateway, f"/ws?token={token}"),
        client(gateway, f"/ws?token={token}") as third,
    ):
        refused = await recv_type(third, "error")
        assert refused["code"] == "too_many_connections"
        assert (await close_frame(third)).code == 4429
        async with client(
            gateway, f"/ws?token={issue(plan='demo', account_id=2, principal=2)}"
        ) as ws:
            assert (await subscribe(ws, BTC))[0]["type"] == "subscribed"


# -- push revocation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        ("key-revoked", f"key:{KEY_ID}"),
        ("session-revoked", "session:session-1"),
        ("account-disabled", "account:1"),
    ],
)
async def test_a_revocation_closes_the_connection_with_4403_within_a_second(
    kind: EventKind, subject: str
) -> None:
    token = key_token(KEY_ID) if kind == "key-revoked" else issue(session="session-1")
    async with (
        gateway_with_tokens() as (bus, gateway),
        client(gateway, f"/ws?token={token}") as ws,
        client(gateway, f"/ws?token={issue(account_id=2, principal=2, session='s-2')}") as other,
    ):
        await subscribe(ws, BTC)
        await subscribe(other, BTC)
        started = time.monotonic()
        await revoke(bus, kind, subject)
        closed = await close_frame(ws)
        took = time.monotonic() - started
        assert (closed.code, closed.reason) == (4403, "revoked")
        assert took < 1.0, f"closed {took:.3f} s after the event"
        await request(other, op="ping", id=9)
        assert (await recv_type(other, "pong"))["id"] == 9  # another principal stays
        assert gateway.stats.revoked == 1


async def test_a_downgrade_drops_the_subscriptions_the_new_plan_does_not_cover() -> None:
    async with (
        gateway_with_tokens() as (bus, gateway),
        client(gateway, f"/ws?token={issue(plan='pro')}") as ws,
    ):
        await subscribe(ws, BTC)
        await subscribe(ws, ETH)
        narrow = plan_claims("pro", plan="narrow", instruments="SYNTH:BTC*")
        await revoke(bus, "entitlements-changed", "account:1", claims=narrow)
        dropped = await recv_type(ws, "error")
        assert (dropped["code"], dropped["field"], dropped["id"]) == ("forbidden", "channel", None)
        assert (dropped["instrument"], dropped["interval"]) == (ETH, "1s")
        await request(ws, op="unsubscribe", id=3, channel="candles", instrument=BTC, interval="1s")
        assert (await recv_type(ws, "unsubscribed"))["id"] == 3  # BTC was kept
        await request(ws, op="subscribe", id=4, channel="candles", instrument=ETH, interval="1s")
        again = await recv_type(ws, "error")
        assert (again["id"], again["code"], again["field"]) == (4, "forbidden", "instrument")
        assert gateway.stats.regranted == 1


# -- the delay ------------------------------------------------------------------------------


class Clock:
    """The gateway's wall clock, moved by the test."""

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


async def test_a_delayed_plan_gets_no_candle_younger_than_the_delay() -> None:
    stream = updates(duration=20.0)
    start = stream[0].open_time
    clock = Clock(start)
    async with (
        gateway_with_tokens(clock=clock) as (bus, gateway),
        client(gateway, f"/ws?token={issue(plan='free')}") as delayed,
        client(gateway, f"/ws?token={issue(plan='pro', account_id=2, principal=2)}") as live,
    ):
        joined, snapshot = await subscribe(delayed, BTC)
        assert joined["epoch"] == f"{gateway.epoch}-d{DELAY}"
        assert snapshot["candles"] == []
        await subscribe(live, BTC)
        clock.now_ns = stream[-1].open_time + NS
        await publish(bus, stream)
        got = [await recv_type(live, "candle") for _ in stream]
        assert got[-1]["seq"] == len(stream)
        await asyncio.sleep(0.5)  # two rounds of the loop: the view holds everything
        with pytest.raises(TimeoutError):
            await recv(delayed, timeout=0.3)
        clock.now_ns = start + DELAY * NS + 10 * NS  # the first ten seconds are due
        released = [await recv_type(delayed, "candle") for _ in range(10)]
        for message in released:
            close_ns = message["candle"]["open_time"] * 1_000_000 + NS
            assert close_ns <= clock.now_ns - DELAY * NS
        assert [m["seq"] for m in released] == list(range(1, 11))
        newest = final(stream)
        assert [m["candle"]["revision"] for m in released] == [
            newest[start + i * NS].revision for i in range(10)
        ]
        with pytest.raises(TimeoutError):
            await recv(delayed, timeout=0.3)
        await request(delayed, op="subscribe", id=5, channel="ticks", instrument=BTC)
        refused = await recv_type(delayed, "error")
        assert (refused["code"], refused["field"]) == ("forbidden", "channel")
