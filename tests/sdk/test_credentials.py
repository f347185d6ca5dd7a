"""``Credentials`` against the real auth service (on PostgreSQL): an API key traded for
access tokens, traded again when due; an account's refresh tokens rotated on use; refusals
as our error with the service's code; secrets never shown. And end to end: a key's tokens
stream from a gateway that checks the auth service's own keys, and the key's revocation
through the auth service ends the stream with ``revoked``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import jwt
import pytest

from access.jwks import JwksCache
from access.keyset import KeySet
from sdk import Credentials, MarketStream, SdkError
from streams.memory import MemoryBus
from tests.auth.conftest import PASSWORD, bearer, log_in, running, sign_up
from tests.ws_gateway.harness import TIMEOUT
from tests.ws_gateway.market import BTC, ETH
from ws_gateway import Gateway, GatewaySettings
from ws_gateway.tokens import AccessTokens

from .test_stream import FAST, ended_with

BASE = "http://auth.test"
EMAIL = "ada@example.org"


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def auth_service(url: str, bus: MemoryBus | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The auth app on ``url`` with an account (:data:`EMAIL`) signed up."""
    async with running(url, bus=bus) as client:
        await sign_up(client, EMAIL)
        yield client


async def new_key(client: httpx.AsyncClient) -> tuple[str, str]:
    """A key of the account: its id and its secret (``k_....secret``)."""
    session = await log_in(client, EMAIL)
    made = await client.post(
        "/auth/v1/keys", json={"name": "bot", "scopes": ["read"]}, headers=bearer(session)
    )
    assert made.status_code == 201, made.text
    return made.json()["key_id"], made.json()["api_key"]


def claims_of(token: str) -> dict[str, object]:
    found: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return found


async def test_a_key_is_traded_for_a_token_and_traded_again_when_due(
    migrated_database: str,
) -> None:
    clock = Clock()
    async with auth_service(migrated_database) as client:
        key_id, api_key = await new_key(client)
        credentials = Credentials(BASE, api_key, http=client, clock=clock)
        token = await credentials.access_token()
        assert claims_of(token.value.reveal())["sub"] == f"key:{key_id}"
        assert token.expires_at - clock.now == 300
        assert token.renew_at - clock.now == pytest.approx(240)
        clock.now = token.renew_at - 1
        assert await credentials.access_token() is token  # not due: no exchange
        clock.now = token.renew_at
        renewed = await credentials.access_token()
        assert renewed.value.reveal() != token.value.reveal()
        assert renewed.renew_at > token.renew_at


async def test_a_refused_key_raises_our_error_with_the_service_code(
    migrated_database: str,
) -> None:
    async with auth_service(migrated_database) as client:
        _, api_key = await new_key(client)
        wrong = api_key[:-4] + "AAAA"
        with pytest.raises(SdkError) as refused:
            await Credentials(BASE, wrong, http=client).access_token()
        assert refused.value.code == "invalid-api-key"
        assert wrong not in str(refused.value)


async def test_secrets_are_never_shown(
    migrated_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with auth_service(migrated_database) as client:
        _, api_key = await new_key(client)
        credentials = Credentials(BASE, api_key, http=client)
        token = await credentials.access_token()
        account = Credentials.account(BASE, EMAIL, PASSWORD, http=client)
        await account.access_token()
    shown = " ".join([repr(credentials), str(credentials), repr(token), repr(account)])
    shown += caplog.text
    secret = api_key.partition(".")[2]
    for value in (secret, token.value.reveal(), PASSWORD):
        assert value not in shown
    assert "***" in repr(token)


async def test_an_account_session_rotates_its_refresh_token_on_every_renewal(
    migrated_database: str,
) -> None:
    clock = Clock()
    handed: list[str] = []

    async def record(answer: httpx.Response) -> None:
        await answer.aread()
        if answer.status_code == 200 and "refresh_token" in answer.json():
            handed.append(answer.json()["refresh_token"])

    async with auth_service(migrated_database) as client:
        client.event_hooks["response"].append(record)
        credentials = Credentials.account(BASE, EMAIL, PASSWORD, http=client, clock=clock)
        first = await credentials.access_token()
        clock.now = first.renew_at
        second = await credentials.access_token()
        assert claims_of(second.value.reveal())["sid"] == claims_of(first.value.reveal())["sid"]
        login_token, next_token = handed  # the login's refresh token, then the next one
        assert login_token != next_token
        spent = await client.post("/auth/v1/refresh", json={"refresh_token": login_token})
        assert spent.json()["code"] == "refresh-token-reused"  # the SDK had spent it
        clock.now = second.renew_at
        with pytest.raises(SdkError) as ended:  # the family is revoked now
            await credentials.access_token()
        assert ended.value.code == "invalid-refresh-token"


async def test_an_unreachable_auth_service_is_auth_unavailable() -> None:
    async with Credentials("http://127.0.0.1:9", "k_0.secret", timeout=2.0) as credentials:
        with pytest.raises(SdkError) as unreachable:
            await credentials.access_token()
    assert unreachable.value.code == "auth_unavailable"


async def test_a_key_streams_until_the_auth_service_revokes_it(migrated_database: str) -> None:
    async with MemoryBus(partitions=2) as bus, auth_service(migrated_database, bus) as client:
        published = await client.get("/auth/.well-known/jwks.json")
        tokens = AccessTokens(JwksCache.fixed(KeySet.from_jwks(published.content)), None)
        settings = GatewaySettings(port=0, instruments=(BTC, ETH))
        key_id, api_key = await new_key(client)
        async with (
            Gateway(bus, None, settings, tokens) as gateway,
            Credentials(BASE, api_key, http=client) as credentials,
            MarketStream(gateway.url, credentials, backoff=FAST) as stream,
        ):
            await asyncio.wait_for(stream.subscribe_candles(BTC, "1m"), TIMEOUT)
            assert stream.core.expires is not None
            owner = bearer(await log_in(client, EMAIL))
            revoked = await client.delete(f"/auth/v1/keys/{key_id}", headers=owner)
            assert revoked.status_code == 204
            assert (await ended_with(stream)).code == "revoked"
            assert stream.connections == 1


async def test_a_stream_whose_key_is_refused_ends_before_connecting(migrated_database: str) -> None:
    async with (
        auth_service(migrated_database) as client,
        Credentials(BASE, "k_00000000000000000000.nope", http=client) as credentials,
        MarketStream("ws://127.0.0.1:9/ws", credentials, backoff=FAST) as stream,
    ):
        assert (await ended_with(stream)).code == "invalid-api-key"
        assert stream.connections == 0
