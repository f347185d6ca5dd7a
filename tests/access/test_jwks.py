"""The key set cache against a real local HTTP server: it keeps the last good keys through an
outage, fetches again on an unknown kid at most once per ten seconds, and refuses what is
not a key set (too large, too slow, an error) without dropping what it has."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from access.jwks import UNKNOWN_KID_EVERY_S, JwksCache
from access.keyset import MAX_DOCUMENT_BYTES
from access.verify import TokenRefused
from tests.support import tokens


@dataclass
class KeyServer:
    """A small HTTP/1.1 server publishing ``body``; it counts requests and can stop."""

    body: bytes = field(default_factory=tokens.jwks)
    status: int = 200
    delay_s: float = 0.0
    requests: int = 0
    server: asyncio.Server | None = None
    open: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/auth/.well-known/jwks.json"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.open:
            writer.close()
        await self.server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open.add(writer)
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            await asyncio.sleep(self.delay_s)
            head = (
                f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + self.body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away (a timeout)
        finally:
            self.open.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture
async def key_server() -> AsyncIterator[KeyServer]:
    server = KeyServer()
    await server.start()
    yield server
    if server.server is not None and server.server.is_serving():
        await server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_last_good_keys_verify_through_an_auth_outage(key_server: KeyServer) -> None:
    now = int(time.time())
    async with JwksCache(key_server.url, refresh_s=3600) as cache:
        assert (await cache.verify(tokens.issue(now=now), now)).subject == "account:1"
        await key_server.stop()
        assert await cache.refresh() is False
        assert cache.keys is not None
        assert set(cache.keys) == {tokens.KEY.kid}
        assert (await cache.verify(tokens.issue(now=now), now)).subject == "account:1"


async def test_an_unknown_kid_fetches_again_at_most_once_per_period(key_server: KeyServer) -> None:
    now, clock = int(time.time()), Clock()
    async with JwksCache(key_server.url, refresh_s=3600, clock=clock) as cache:
        assert key_server.requests == 1
        stranger = tokens.unknown_key(now)
        for _ in range(5):
            with pytest.raises(TokenRefused) as refused:
                await cache.verify(stranger, now)
            assert refused.value.code == "unknown_key"
        assert key_server.requests == 2
        key_server.body = tokens.jwks(tokens.KEY, tokens.OTHER_KEY)  # a rotation
        clock.now += UNKNOWN_KID_EVERY_S - 1
        with pytest.raises(TokenRefused):
            await cache.verify(stranger, now)
        assert key_server.requests == 2
        clock.now += 1
        assert (await cache.verify(stranger, now)).subject == "account:1"
        assert key_server.requests == 3


async def test_the_cache_starts_without_keys_when_auth_is_away_and_catches_up(
    key_server: KeyServer,
) -> None:
    now = int(time.time())
    key_server.status = 503
    async with JwksCache(key_server.url, refresh_s=3600) as cache:
        assert cache.keys is None
        with pytest.raises(TokenRefused) as refused:
            await cache.verify(tokens.issue(now=now), now)
        assert refused.value.code == "unknown_key"
        key_server.status = 200
        assert await cache.refresh() is True
        assert (await cache.verify(tokens.issue(now=now), now)).plan == "pro"


@pytest.mark.parametrize("bad", ["too large", "too slow", "not a key set"])
async def test_a_bad_answer_keeps_the_keys_it_had(key_server: KeyServer, bad: str) -> None:
    async with JwksCache(key_server.url, refresh_s=3600, timeout_s=0.3) as cache:
        before = cache.keys
        if bad == "too large":
            key_server.body = b" " * (MAX_DOCUMENT_BYTES + 1)
        elif bad == "too slow":
            key_server.delay_s = 1.0
        else:
            key_server.body = b'{"keys": [{"kid": "k", "kty": "RSA"}]}'
        assert await cache.refresh() is False
        assert cache.keys is before


async def test_the_cache_refreshes_on_its_period(key_server: KeyServer) -> None:
    async with JwksCache(key_server.url, refresh_s=0.05) as cache:
        key_server.body = tokens.jwks(tokens.OTHER_KEY)
        for _ in range(100):
            await asyncio.sleep(0.02)
            if cache.keys is not None and set(cache.keys) == {tokens.OTHER_KEY.kid}:
                break
        assert cache.keys is not None
        assert set(cache.keys) == {tokens.OTHER_KEY.kid}


async def test_a_fixed_key_set_never_fetches() -> None:
    now = int(time.time())
    async with JwksCache.fixed(tokens.keyset()) as cache:
        with pytest.raises(TokenRefused):
            await cache.verify(tokens.unknown_key(now), now)
        assert cache.fetches == 0
