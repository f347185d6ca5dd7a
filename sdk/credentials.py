"""Access tokens for a bot: an API key (or an account's email and password) traded at the
auth service for short-lived access tokens, renewed before they expire (``docs/sdk.md``).

:class:`Credentials` talks to the auth service's routes behind the edge (``docs/auth.md``):
``POST /auth/v1/token`` with the API key, or ``POST /auth/v1/login`` then ``POST
/auth/v1/refresh`` with the session's refresh token, which the service rotates on every use
(the token handed in is spent; the answer carries the next one). The key, the password and
every token are held as :class:`core.secrets.Secret`: ``repr``, ``str`` and logging show
``***``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Protocol

import httpx
import msgspec

from core.secrets import MaskedFields, Secret
from sdk.closing import OwnsHttp
from sdk.errors import AUTH_UNAVAILABLE, SdkError

RENEW_AT: Final = 0.8
"""The fraction of a token's lifetime after which it is renewed."""
MAX_ANSWER_BYTES: Final = 64 * 1024
"""The largest auth answer read (a token answer is well under 2 KiB)."""
MAX_SECRET_CHARS: Final = 512


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An access token: ``value`` for the ``Authorization`` header or an ``auth`` frame,
    ``expires_at`` and ``renew_at`` in UNIX seconds, ``plan`` the plan it carries."""

    value: Secret
    expires_at: float
    renew_at: float
    plan: str


class TokenSource(Protocol):
    """What a stream asks for a token: a valid one, renewed when due."""

    async def access_token(self) -> AccessToken: ...


class _Session(MaskedFields, msgspec.Struct):
    masked: ClassVar[frozenset[str]] = frozenset({"refresh_token", "access_token"})

    access_token: str
    expires_in: int
    plan: str
    refresh_token: str | None = None


class _Problem(msgspec.Struct):
    code: str = "unknown"
    detail: str = ""


_SESSION: Final = msgspec.json.Decoder(_Session)
_PROBLEM: Final = msgspec.json.Decoder(_Problem)


class Credentials(OwnsHttp):
    """A bot's credentials at the auth service, reached at ``base_url`` (the edge, say
    ``http://127.0.0.1:8000``).

    ``await credentials.access_token()`` gives a token valid for a while yet: the first
    call trades the key, later ones give the same token until :data:`RENEW_AT` of its lifetime
    has passed, then trade again (one exchange at a time however many tasks ask). A refusal
    raises :class:`SdkError` with the auth service's code (``invalid-api-key``,
    ``refresh-token-reused``...); an unreachable service or a malformed answer raises it with
    ``auth_unavailable``.

    ``http`` (optional) is the client to use (it stays the caller's to close); without it
    one is made and closed by :meth:`aclose` or ``async with``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = _secret(api_key)
        self._password: Secret | None = None
        self._email: str | None = None
        self._base = base_url.rstrip("/")
        super().__init__(http, timeout)
        self._clock = clock
        self._token: AccessToken | None = None
        self._refresh: Secret | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def account(
        cls,
        base_url: str,
        email: str,
        password: str | Secret,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> Credentials:
        """An account's credentials: a login, then refresh tokens (rotated on every use)."""
        made = cls(base_url, Secret(""), http=http, timeout=timeout, clock=clock)
        made._email, made._password = email, _secret(password)
        return made

    def __repr__(self) -> str:
        who = f"email={self._email!r}" if self._email else "api_key=***"
        return f"Credentials({self._base!r}, {who})"

    async def access_token(self) -> AccessToken:
        async with self._lock:
            token = self._token
            if token is None or self._clock() >= token.renew_at:
                token = self._token = await self._next()
            return token

    async def _next(self) -> AccessToken:
        if self._password is None:
            return self._take(await self._post("/auth/v1/token", api_key=self._key.reveal()))
        if self._refresh is not None:
            refresh, self._refresh = self._refresh, None  # spent, whatever the answer
            return self._take(await self._post("/auth/v1/refresh", refresh_token=refresh.reveal()))
        answer = await self._post(
            "/auth/v1/login", email=self._email, password=self._password.reveal()
        )
        return self._take(answer)

    def _take(self, session: _Session) -> AccessToken:
        now = self._clock()
        if session.refresh_token is not None:
            self._refresh = Secret(session.refresh_token)
        lifetime = max(0, session.expires_in)
        return AccessToken(
            Secret(session.access_token), now + lifetime, now + RENEW_AT * lifetime, session.plan
        )

    async def _post(self, path: str, **body: Any) -> _Session:
        try:
            answer = await self._http.post(self._base + path, json=body)
        except httpx.HTTPError as exc:
            raise SdkError(AUTH_UNAVAILABLE, f"{path}: {type(exc).__name__}") from None
        content = answer.content[: MAX_ANSWER_BYTES + 1]
        if len(content) > MAX_ANSWER_BYTES:
            raise SdkError(AUTH_UNAVAILABLE, f"{path}: answer above {MAX_ANSWER_BYTES} bytes")
        try:
            if answer.status_code != 200:
                problem = _PROBLEM.decode(content)
                raise SdkError(problem.code, problem.detail or f"HTTP {answer.status_code}")
            return _SESSION.decode(content)
        except msgspec.DecodeError:
            raise SdkError(
                AUTH_UNAVAILABLE, f"{path}: HTTP {answer.status_code}, not a token answer"
            ) from None


def _secret(value: str | Secret) -> Secret:
    secret = value if isinstance(value, Secret) else Secret(value)
    if len(secret.reveal()) > MAX_SECRET_CHARS:
        raise SdkError("invalid-request", f"a secret of at most {MAX_SECRET_CHARS} characters")
    return secret
