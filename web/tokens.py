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
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute

from access.denylist import Denylist
from access.grant import Grant
from access.settings import TokenSettings
from access.verify import MAX_TOKEN_CHARS, TokenRefused
from core.auth_events import AuthEvent, PlanClaims
from core.intervals import NS_PER_SECOND
from core.topics import AUTH_EVENTS
from streams.bus import Bus, BusClosedError
from streams.processor import Batch, Outcome, Processor
from web.internal_errors import InternalErrors
from web.problems import ProblemError, http_error_handler, problem_handler

OPEN: Final = Grant.anonymous(
    PlanClaims(plan="open", instruments="*", delay=0, history_days=1_000_000, ws_subs=0,
               ws_conns=0, rpm=0, trade=False)
)  # fmt: skip
"""The grant of every request when the gate checks no tokens."""


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
        self.keys = settings.key_cache()

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


def service_app(routes: Sequence[BaseRoute], gate: TokenGate, bus: Bus | None) -> Starlette:
    """A service's Starlette app: its ``routes``, problem+json for every error, and the key
    set and revocations kept by :func:`checking` while it runs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with checking(gate, bus):
            yield

    return Starlette(
        routes=routes,
        middleware=[Middleware(InternalErrors)],
        exception_handlers={ProblemError: problem_handler, HTTPException: http_error_handler},
        lifespan=lifespan,
    )
