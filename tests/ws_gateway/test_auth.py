"""Tokens at connect: query parameter or bearer header, a pluggable authenticator, refusals
as HTTP answers before the WebSocket opens, permissions per channel, expiry."""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest
from websockets.exceptions import InvalidStatus

from ws_gateway.auth import (
    ANONYMOUS,
    AuthenticationError,
    Principal,
    StaticTokens,
    bearer_token,
)

from .harness import client, close_frame, recv_type, request, running
from .market import BTC

BOT = Principal("bot", frozenset({"read:candles"}))
TOKENS = StaticTokens({"t-bot": BOT}, anonymous=None)


async def test_static_tokens_without_anonymous_access() -> None:
    assert await TOKENS.authenticate("t-bot") == BOT
    for token in (None, "wrong"):
        with pytest.raises(AuthenticationError) as refused:
            await TOKENS.authenticate(token)
        assert refused.value.status is HTTPStatus.UNAUTHORIZED


async def test_the_embedded_default_lets_anyone_read_and_refuses_tokens_it_cannot_check() -> None:
    default = StaticTokens()
    assert await default.authenticate(None) == ANONYMOUS
    with pytest.raises(AuthenticationError):
        await default.authenticate("some-token")


def test_token_from_query_parameter_or_bearer_header() -> None:
    assert bearer_token("q", "Bearer h") == "q"
    assert bearer_token(None, "Bearer  h-1 ") == "h-1"
    assert bearer_token(None, "bearer h") == "h"
    assert bearer_token(None, None) is None
    assert bearer_token("", "") is None
    for header in ("Basic abc", "Bearer", "Bearer   "):
        with pytest.raises(AuthenticationError):
            bearer_token(None, header)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ws?token=wrong", None),
        ("/ws", {"Authorization": "Bearer wrong"}),
        ("/ws", {"Authorization": "Basic dXNlcjpwYXNz"}),
    ],
)
async def test_a_refused_token_is_an_http_401_at_the_handshake(
    path: str, headers: dict[str, str] | None
) -> None:
    async with running(authenticator=TOKENS) as (_, gateway):
        with pytest.raises(InvalidStatus) as refused:
            async with client(gateway, path, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
        assert gateway.stats.refused == 1


async def test_an_authenticator_may_answer_403() -> None:
    class Banned:
        async def authenticate(self, token: str | None) -> Principal:
            raise AuthenticationError("banned", HTTPStatus.FORBIDDEN)

    async with running(authenticator=Banned()) as (_, gateway):
        with pytest.raises(InvalidStatus) as refused:
            async with client(gateway):
                pass
        assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/ws?token=t-bot", None), ("/", {"Authorization": "Bearer t-bot"})],
)
async def test_a_token_grants_its_principal_permissions(
    path: str, headers: dict[str, str] | None
) -> None:
    async with (
        running(authenticator=TOKENS) as (_, gateway),
        client(gateway, path, additional_headers=headers) as ws,
    ):
        await request(ws, op="subscribe", id=1, channel="ticks", instrument=BTC)
        error = await recv_type(ws, "error")
        assert (error["id"], error["code"], error["field"]) == (1, "unauthorized", "channel")
        await request(ws, op="subscribe", id=2, channel="candles", instrument=BTC, interval="1m")
        assert (await recv_type(ws, "subscribed"))["id"] == 2


async def test_anonymous_access_can_be_switched_off_in_settings() -> None:
    """Without a token the connection opens for its ``auth`` frame (browsers cannot send
    headers), but serves nothing else: a request first is ``unauthorized``, then 4401."""
    async with (
        running(allow_anonymous=False) as (_, gateway),
        client(gateway) as ws,
    ):
        await request(ws, op="subscribe", id=1, channel="candles", instrument=BTC, interval="1m")
        refused = await recv_type(ws, "error")
        assert (refused["id"], refused["code"], refused["field"]) == (1, "unauthorized", "token")
        closed = await close_frame(ws)
        assert (closed.code, closed.reason) == (4401, "unauthorized")


async def test_without_anonymous_access_the_auth_frame_is_awaited_a_bounded_time() -> None:
    async with (
        running(allow_anonymous=False, auth_timeout=0.3) as (_, gateway),
        client(gateway) as ws,
    ):
        started = time.monotonic()
        refused = await recv_type(ws, "error")
        assert refused["code"] == "unauthorized"
        assert "no token within 0.3 s" in refused["message"]
        closed = await close_frame(ws)
        assert closed.code == 4401
        assert 0.3 <= time.monotonic() - started < 2.0


async def test_a_connection_is_closed_with_4401_when_its_token_expires() -> None:
    soon = Principal("brief", frozenset({"read:*"}), expires_at_ns=time.time_ns() + 300_000_000)
    tokens = StaticTokens({"t": soon}, anonymous=None)
    async with (
        running(authenticator=tokens, heartbeat=0.1) as (_, gateway),
        client(gateway, "/ws?token=t") as ws,
    ):
        closed = await close_frame(ws, timeout=3.0)
        assert (closed.code, closed.reason) == (4401, "token expired")
