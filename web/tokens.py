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

Following the revocations never ends on its own while the app runs (:class:`Revocations`): a
read that fails (the bus away when the consumer starts, a fetch error; or a bug) is told,
once, every 30 s while it lasts and at its end, and tried again with backoff; meanwhile the
process's ``revocations`` readiness check (``/readyz`` on the admin port) reads
``unavailable``: revoked keys and plan changes are not being applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
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
from streams.bus import Bus, BusClosedError, BusError
from streams.outage import Backoff
from streams.processor import Batch, Outcome, Processor, Step
from streams.rounds import RoundFailures
from telemetry.readiness import READINESS
from web.internal_errors import InternalErrors
from web.problems import ProblemError, http_error_handler, problem_handler

OPEN: Final = Grant.anonymous(
    PlanClaims(plan="open", instruments="*", delay=0, history_days=1_000_000, ws_subs=0,
               ws_conns=0, rpm=0, trade=False)
)  # fmt: skip
"""The grant of every request when the gate checks no tokens."""

log = logging.getLogger(__name__)

READY_CHECK: Final = "revocations"
"""The readiness check that fails while the revocations cannot be read."""


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

    def revocations(self, bus: Bus, step: Step[None] | None = None) -> Processor[None]:
        """The loop that reads ``auth.events`` into the denylist (with ``step``, by default
        :meth:`step`): every instance reads every event (a group of its own), from the oldest
        kept (an entry lasts until its tokens have expired, so a restart learns what is still
        revoked)."""
        group = f"{self.service}.revocations.{uuid.uuid4().hex[:12]}"
        return Processor(
            bus, group, [AUTH_EVENTS], step or self.step, start="earliest",
            clock=self.tokens.clock,
        )  # fmt: skip


class Revocations:
    """The gate's revocations followed on ``bus`` until :meth:`stop`, whatever fails: a failed
    read is told and tried again after a pause (:class:`~streams.rounds.RoundFailures`), in
    the same group (a repeat changes nothing). :attr:`failing` holds from a failure until a
    read succeeds again."""

    def __init__(
        self,
        gate: TokenGate,
        bus: Bus,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gate = gate
        self._processor = gate.revocations(bus, self._step)
        self._stopped = asyncio.Event()
        self._failures = RoundFailures(
            f"{gate.service}: auth.events", log, expected=(BusError,),
            backoff=backoff or Backoff(), clock=clock, then="revocations wait; retrying",
        )  # fmt: skip

    @property
    def failing(self) -> bool:
        return self._failures.failing

    def stop(self) -> None:
        """End :meth:`run`: after the current round, or at once during a pause between two
        failed reads."""
        self._stopped.set()
        self._processor.stop()

    async def run(self) -> None:
        while not self._stopped.is_set():
            try:
                await self._processor.run()
                return  # stopped
            except BusClosedError:  # the bus's owner closed it: nothing more to read
                return
            except Exception as exc:  # a BusError, or a bug: told, tried again, never silent
                pause = self._failures.failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), pause)

    def _step(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
        """A round came: the read works (again)."""
        self._failures.succeeded()
        return self._gate.step(batch, now_ns, caught_up)


class _Following:
    """The process's followers, for its one ``revocations`` readiness check (the admin
    server's thread reads it)."""

    def __init__(self) -> None:
        self._followers: list[Revocations] = []
        self._lock = threading.Lock()
        self._remove: Callable[[], None] | None = None

    def add(self, follower: Revocations) -> None:
        with self._lock:
            self._followers.append(follower)
            if self._remove is None:
                self._remove = READINESS.add(READY_CHECK, self.check)

    def discard(self, follower: Revocations) -> None:
        with self._lock:
            self._followers.remove(follower)
            if not self._followers and self._remove is not None:
                self._remove()
                self._remove = None

    def check(self) -> str | None:
        with self._lock:
            failing = any(follower.failing for follower in self._followers)
        return "unavailable" if failing else None


_FOLLOWING: Final = _Following()


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
        follower = Revocations(gate, bus)
        _FOLLOWING.add(follower)
        task = asyncio.create_task(follower.run(), name="auth.events")
        try:
            yield
        finally:
            follower.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            _FOLLOWING.discard(follower)


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
