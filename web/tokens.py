"""The token gate in front of a service's HTTP routes (``docs/auth.md``, "How services check
tokens"): the history API's and the trading API's, the one way.

:class:`TokenGate` turns a request into a :class:`~access.grant.Grant`:

- ``Authorization: Bearer <jwt>``: verified against the key set (:class:`access.jwks.JwksCache`,
  fetched from ``jwks_url`` or given as ``keys``), then against the revocations read from
  ``auth.events`` (:class:`access.denylist.Denylist`); a plan change applies at once;
- no token: the anonymous plan when the settings name one, else 401 ``token-required``;
- a token that is present and refused is always 401 (``invalid-token``, or ``token-expired``),
  with our refusal code in ``reason``: never anonymous.

Without a key set (neither ``jwks_url`` nor ``keys``) the gate checks nothing and every request
gets :data:`OPEN`, as on a private machine; a service that must never run so (trading) refuses
such settings itself. :func:`checking` keeps the key set fetched and the revocations followed
while an app runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final

from starlette.requests import Request

from access.denylist import Denylist
from access.grant import Grant
from access.jwks import JwksCache
from access.keyset import KeySet
from access.verify import DEFAULT_AUDIENCE, DEFAULT_ISSUER, MAX_TOKEN_CHARS, TokenRefused
from core.auth_events import AuthEvent, PlanClaims
from core.intervals import NS_PER_SECOND
from core.topics import AUTH_EVENTS
from streams.bus import Bus, BusClosedError
from streams.processor import Batch, Outcome, Processor
from web.problems import ProblemError

OPEN: Final = Grant.anonymous(
    PlanClaims(plan="open", instruments="*", delay=0, history_days=1_000_000, ws_subs=0,
               ws_conns=0, rpm=0, trade=False)
)  # fmt: skip
"""The grant of every request when the gate checks no tokens."""


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """How a service checks tokens: ``jwks_url``, the auth service's key set, fetched every
    ``jwks_refresh_s`` seconds, or ``keys``, a fixed key set (tests); with neither, nothing is
    checked. ``issuer`` and ``audience`` a token must name; ``anonymous``: the claims of the
    plan of a request without a token (None: such a request is refused, 401);
    ``token_cache``: tokens remembered once verified (0: every request verifies its
    signature); ``clock``: the wall clock, UTC nanoseconds."""

    jwks_url: str | None = None
    jwks_refresh_s: float = 30.0
    keys: KeySet | None = field(default=None, repr=False)
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    anonymous: PlanClaims | None = None
    token_cache: int = 4096
    clock: Callable[[], int] = field(default=time.time_ns, repr=False)

    @property
    def checks_tokens(self) -> bool:
        return self.jwks_url is not None or self.keys is not None


def unauthorized(kind: str, detail: str, reason: str | None = None) -> ProblemError:
    """401: no token where one is needed, or a token refused (``reason``: our code)."""
    challenge = "Bearer" if reason is None else 'Bearer error="invalid_token"'
    return ProblemError(
        401, kind, "Unauthorized", detail, headers={"WWW-Authenticate": challenge},
        extra={} if reason is None else {"reason": reason},
    )  # fmt: skip


class TokenGate:
    """A service's token checks, from its settings; ``service`` names its revocations' group."""

    def __init__(self, settings: TokenSettings, service: str) -> None:
        self.tokens = settings
        self.service = service
        self.denylist = Denylist()
        self.anonymous = None if settings.anonymous is None else Grant.anonymous(
            settings.anonymous
        )  # fmt: skip
        self.keys: JwksCache | None = None
        if settings.keys is not None:
            self.keys = JwksCache.fixed(
                settings.keys, issuer=settings.issuer, audience=settings.audience,
                cache_size=settings.token_cache,
            )  # fmt: skip
        elif settings.jwks_url is not None:
            self.keys = JwksCache(
                settings.jwks_url, settings.jwks_refresh_s, issuer=settings.issuer,
                audience=settings.audience, cache_size=settings.token_cache,
            )  # fmt: skip

    @property
    def checks(self) -> bool:
        """Whether tokens are checked at all."""
        return self.keys is not None

    async def grant(self, request: Request) -> Grant:
        """The grant of ``request`` (a 401 :class:`ProblemError` when there is none)."""
        if self.keys is None:
            return OPEN
        now_s = self.tokens.clock() // NS_PER_SECOND
        header = request.headers.get("authorization")
        if header is None:
            if self.anonymous is None:
                raise unauthorized(
                    "token-required", "send an access token: Authorization: Bearer <token>"
                )
            return self.anonymous
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
            raise unauthorized(
                "invalid-token", "the Authorization header must be Bearer <token>", "malformed"
            )
        try:
            grant = await self.keys.verify(token, now_s)
        except TokenRefused as refused:
            kind = "token-expired" if refused.code == "expired" else "invalid-token"
            raise unauthorized(kind, refused.message, refused.code) from None
        if self.denylist.refuses(grant, now_s):
            raise unauthorized("invalid-token", "the token was revoked", "revoked")
        return self.denylist.plan_of(grant, now_s)

    # -- revocations ----------------------------------------------------------------------

    def step(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
        """The revocations' processor step: each event into the denylist."""
        now_s = now_ns // NS_PER_SECOND
        for message in batch.messages:
            if isinstance(message, AuthEvent):
                self.denylist.apply(message, now_s)
        return Outcome([], None)

    def revocations(self, bus: Bus) -> Processor[None]:
        """The loop that reads ``auth.events`` into the denylist: every instance reads every
        event (a group of its own), from the oldest kept (an entry lasts until its tokens
        have expired, so a restart learns what is still revoked)."""
        group = f"{self.service}.revocations.{uuid.uuid4().hex[:12]}"
        return Processor(
            bus, group, [AUTH_EVENTS], self.step, start="earliest", clock=self.tokens.clock
        )


@contextlib.asynccontextmanager
async def checking(gate: TokenGate, bus: Bus | None) -> AsyncIterator[None]:
    """The key set fetched and kept, and the revocations followed, while an app runs."""
    if gate.keys is None:
        yield
        return
    async with gate.keys:
        if bus is None:
            yield
            return
        follower = gate.revocations(bus)
        task = asyncio.create_task(_follow(follower), name="auth.events")
        try:
            yield
        finally:
            follower.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _follow(follower: Processor[None]) -> None:
    with contextlib.suppress(BusClosedError):  # the bus's owner closed it: nothing to read
        await follower.run()
