"""The auth service's key set, fetched and kept: :class:`JwksCache` (the one I/O shell here).

The cache fetches the JWKS when it opens and every ``refresh_s`` seconds after. A fetch that
fails (the auth service is down, answers an error, sends something that is not a key set, or
more than :data:`~access.keyset.MAX_DOCUMENT_BYTES`, or takes longer than ``timeout_s``) is
logged in one line and changes nothing: the last good key set keeps verifying through an auth
outage. A token whose ``kid`` is unknown makes the cache fetch at once (a rotation published
a key since the last fetch), at most once every :data:`UNKNOWN_KID_EVERY_S` seconds, so a
stream of tokens with made-up kids costs the auth service one request per period.
:meth:`JwksCache.fixed` serves a key set that never changes (tests, offline use).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

import httpx

from access.grant import Grant
from access.keyset import MAX_DOCUMENT_BYTES, KeySet, KeySetError
from access.verify import DEFAULT_AUDIENCE, DEFAULT_ISSUER, LEEWAY_S, TokenRefused, TokenVerifier
from telemetry.http import traced_client

log = logging.getLogger(__name__)

UNKNOWN_KID_EVERY_S: Final = 10.0
"""The least time between two fetches caused by tokens of an unknown key."""
TIMEOUT_S: Final = 5.0


class JwksCache:
    """The key set at ``url``, refreshed every ``refresh_s`` seconds, and the verifier over
    it; use it as an async context manager (the refresh task lives inside). ``tls``: the
    context an ``https`` key set is fetched with (the service's certificate presented, the
    auth service's checked against its CA: ``docs/security.md``; None: the system's
    authorities)."""

    def __init__(
        self,
        url: str | None,
        refresh_s: float = 30.0,
        *,
        keys: KeySet | None = None,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        leeway_s: int = LEEWAY_S,
        cache_size: int = 0,
        timeout_s: float = TIMEOUT_S,
        tls: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self._tls = tls
        self.issuer, self.audience, self.leeway_s = issuer, audience, leeway_s
        self.cache_size = cache_size
        self._clock = clock
        self._verifier = None if keys is None else self._verifier_of(keys)
        self._fetching = asyncio.Lock()
        self._last_unknown_fetch: float | None = None
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.fetches = 0
        """Fetches tried since the start (a figure for tests and status)."""

    @classmethod
    def fixed(
        cls,
        keys: KeySet,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        cache_size: int = 0,
    ) -> JwksCache:
        """A cache of ``keys`` that never fetches."""
        return cls(None, keys=keys, issuer=issuer, audience=audience, cache_size=cache_size)

    @property
    def keys(self) -> KeySet | None:
        """The key set in use (None before the first good fetch)."""
        return None if self._verifier is None else self._verifier.keys

    async def __aenter__(self) -> Self:
        if self.url is not None:
            self._client = traced_client(
                httpx.AsyncClient(
                    timeout=self.timeout_s, follow_redirects=False, verify=self._tls or True
                )
            )
            await self.refresh()
            self._task = asyncio.create_task(self._refresh_forever(), name="jwks refresh")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        self._task = self._client = None

    async def verify(self, token: str, now: int) -> Grant:
        """The grant of ``token`` (:class:`~access.verify.TokenRefused` when refused)."""
        verifier = self._verifier
        try:
            if verifier is None:
                raise TokenRefused("unknown_key", "no key set yet: the auth service is away")
            return verifier.verify(token, now)
        except TokenRefused as refused:
            if refused.code != "unknown_key" or not await self._fetch_for_unknown_kid():
                raise
        if self._verifier is None:
            raise TokenRefused("unknown_key", "no key set yet: the auth service is away")
        return self._verifier.verify(token, now)

    async def refresh(self) -> bool:
        """Fetch the key set now; whether it was taken (a failure keeps the last one)."""
        if self.url is None or self._client is None:
            return False
        async with self._fetching:
            self.fetches += 1
            try:
                keys = KeySet.from_jwks(await self._download(self._client, self.url))
            except (KeySetError, httpx.HTTPError) as exc:
                log.warning("jwks: keeping the last key set; %s: %s", self.url, exc)
                return False
            if self._verifier is None or not keys.same_as(self._verifier.keys):
                self._verifier = self._verifier_of(keys)
            return True

    async def _fetch_for_unknown_kid(self) -> bool:
        now = self._clock()
        last = self._last_unknown_fetch
        if self.url is None or (last is not None and now - last < UNKNOWN_KID_EVERY_S):
            return False
        self._last_unknown_fetch = now
        return await self.refresh()

    async def _download(self, client: httpx.AsyncClient, url: str) -> bytes:
        async with client.stream("GET", url, headers={"Accept": "application/json"}) as answer:
            if answer.status_code != 200:
                raise KeySetError(f"the key set URL answered {answer.status_code}")
            body = bytearray()
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise KeySetError(f"the key set is over {MAX_DOCUMENT_BYTES} bytes")
            return bytes(body)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            await self.refresh()

    def _verifier_of(self, keys: KeySet) -> TokenVerifier:
        return TokenVerifier(
            keys,
            issuer=self.issuer,
            audience=self.audience,
            leeway_s=self.leeway_s,
            cache_size=self.cache_size,
        )
