"""Who may read what: the history API checks every token itself (``docs/auth.md``, "How
services check tokens").

:class:`Gate` turns a request into a :class:`~access.grant.Grant`:

- ``Authorization: Bearer <jwt>``: verified against the key set (:class:`access.jwks.JwksCache`,
  fetched from ``jwks_url`` or given as ``keys``), then against the revocations read from
  ``auth.events`` (:class:`access.denylist.Denylist`); a plan change applies at once;
- no token: the anonymous plan when the settings name one, else 401 ``token-required``;
- a token that is present and refused is always 401 (``invalid-token``, or ``token-expired``),
  with our refusal code in ``reason``: never anonymous.

Without a key set (neither ``jwks_url`` nor ``keys``) the API checks nothing and every
request reads everything, as on a private machine; :data:`OPEN` is that grant.

:class:`Window` is what a grant lets one read see, in time: candles and ticks no older than
the plan's depth (cut at 00:00 UTC ``history_days`` days before today: clamped, not refused),
and, for a delayed plan, no candle that closes after ``now - delay`` and no tick after it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request

from access.denylist import Denylist
from access.grant import Grant
from access.jwks import JwksCache
from access.verify import MAX_TOKEN_CHARS, TokenRefused
from charting.problems import ProblemError
from charting.settings import ApiSettings
from core.auth_events import AuthEvent, PlanClaims
from core.intervals import NS_PER_SECOND, Interval
from core.topics import AUTH_EVENTS
from streams.bus import Bus
from streams.processor import Batch, Outcome, Processor

DAY_NS: Final = 86_400 * NS_PER_SECOND
OPEN: Final = Grant.anonymous(
    PlanClaims(plan="open", instruments="*", delay=0, history_days=1_000_000, ws_subs=0,
               ws_conns=0, rpm=0, trade=False)
)  # fmt: skip
"""The grant of every request when the API checks no tokens."""
GUARDED_PREFIXES: Final = ("/v1/", "/udf/")
"""The paths that read market data; the page, its config, the docs and health stay open."""


@dataclass(frozen=True, slots=True)
class Window:
    """The time a grant lets a request read: opens from ``floor_ns``; for a delayed plan,
    candles that close by ``cutoff_ns`` and ticks at or before it (None: real time)."""

    floor_ns: int
    cutoff_ns: int | None

    @classmethod
    def of(cls, grant: Grant, now_ns: int) -> Window:
        days = min(grant.history_days, now_ns // DAY_NS)
        floor = (now_ns - now_ns % DAY_NS) - days * DAY_NS
        cutoff = None if grant.delay_s == 0 else now_ns - grant.delay_s * NS_PER_SECOND
        return cls(max(floor, 0), cutoff)

    def start(self, start: int) -> int:
        """The first open time served of a range asked from ``start``."""
        return max(start, self.floor_ns)

    def candle_end(self, end: int, interval: Interval) -> int:
        """The end (exclusive, open times) of a range asked until ``end``: candles whose
        close time is later than the cutoff are left out."""
        if self.cutoff_ns is None:
            return end
        return min(end, interval.bucket_start(self.cutoff_ns))

    def tick_end(self, end: int) -> int:
        """The end (exclusive) of a range of ticks asked until ``end``."""
        return end if self.cutoff_ns is None else min(end, self.cutoff_ns + 1)


def unauthorized(kind: str, detail: str, reason: str | None = None) -> ProblemError:
    """401: no token where one is needed, or a token refused (``reason``: our code)."""
    challenge = "Bearer" if reason is None else 'Bearer error="invalid_token"'
    return ProblemError(
        401, kind, "Unauthorized", detail, headers={"WWW-Authenticate": challenge},
        extra={} if reason is None else {"reason": reason},
    )  # fmt: skip


def forbidden(parameter: str, instrument: str, grant: Grant) -> ProblemError:
    """403: the instrument is outside the grant's plan."""
    return ProblemError(
        403,
        "instrument-not-in-plan",
        "Forbidden",
        f"{parameter}: {instrument} is not in the plan {grant.plan}",
        parameter,
    )


class Gate:
    """The app's token checks, from its settings."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
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
        now_s = self.settings.clock() // NS_PER_SECOND
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

    def window(self, grant: Grant) -> Window:
        return Window.of(grant, self.settings.clock())

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
        group = f"history-api.revocations.{uuid.uuid4().hex[:12]}"
        return Processor(
            bus, group, [AUTH_EVENTS], self.step, start="earliest", clock=self.settings.clock
        )
