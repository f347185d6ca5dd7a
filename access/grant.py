"""What a verified access token, or the anonymous plan, lets its holder do.

A :class:`Grant` is built from a token's claims (:meth:`Grant.from_claims`) or from a plan's
claims alone (:meth:`Grant.anonymous`); both read the claims by the names a token carries them
under (``docs/auth.md``, "Access tokens and their claims"), typed strictly: a missing or
mistyped claim is a :class:`GrantError` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final

import msgspec

from core.auth_events import PlanClaims

ANONYMOUS: Final = "anonymous"
MAX_PATTERNS: Final = 256
"""The most instrument patterns a grant holds."""
MAX_LIMIT: Final = 1_000_000
"""The largest count a claim may carry (days, subscriptions, requests per minute)."""


class GrantError(ValueError):
    """Claims that make no grant (the message names the claim)."""


class TokenClaims(msgspec.Struct, frozen=True, kw_only=True):
    """The claims of an access token that a service reads (others are ignored)."""

    iss: str
    aud: str
    sub: str
    iat: int
    nbf: int
    exp: int
    jti: str
    acct: int
    sid: str
    scope: str
    plan: str
    instruments: str
    delay: int
    history_days: int
    ws_subs: int
    ws_conns: int
    rpm: int
    trade: bool


@dataclass(frozen=True, slots=True)
class Grant:
    """A principal's entitlements: ``subject`` (``account:<id>``, ``key:<id>`` or
    ``anonymous``), its account, session and token, its scopes and its plan's limits;
    ``expires_at`` in UNIX seconds (None for the anonymous plan)."""

    subject: str
    account_id: int | None
    session: str
    token_id: str
    scopes: tuple[str, ...]
    plan: str
    instruments: tuple[str, ...]
    delay_s: int
    history_days: int
    ws_subscriptions: int
    ws_connections: int
    requests_per_minute: int
    trading: bool
    expires_at: int | None

    def covers(self, instrument: str) -> bool:
        """Whether ``instrument`` matches one of the plan's patterns (``*``: any run of
        characters; compared in upper case)."""
        return _matcher(self.instruments).fullmatch(instrument.upper()) is not None

    @property
    def is_anonymous(self) -> bool:
        return self.subject == ANONYMOUS

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Grant:
        """The grant of a verified token's ``claims`` (:class:`GrantError` when one is missing
        or mistyped)."""
        return cls.of_token(_convert(claims, TokenClaims))

    @classmethod
    def of_token(cls, claims: TokenClaims) -> Grant:
        plan = _plan(claims)
        return cls(
            subject=claims.sub,
            account_id=claims.acct,
            session=claims.sid,
            token_id=claims.jti,
            scopes=tuple(claims.scope.split()),
            expires_at=claims.exp,
            **plan,
        )

    @classmethod
    def anonymous(cls, claims: Mapping[str, Any] | PlanClaims) -> Grant:
        """The grant of a client without a token, on the plan whose claims are ``claims``."""
        plan = claims if isinstance(claims, PlanClaims) else _convert(claims, PlanClaims)
        return cls(
            subject=ANONYMOUS,
            account_id=None,
            session="",
            token_id="",
            scopes=("read",),
            expires_at=None,
            **_plan(plan),
        )

    def with_plan(self, claims: PlanClaims) -> Grant:
        """This grant on another plan (an ``entitlements-changed`` event); trading stays off
        for a token whose scopes lack ``trade``."""
        plan = _plan(claims)
        plan["trading"] = plan["trading"] and "trade" in self.scopes
        return replace(self, **plan)


def _convert(claims: Mapping[str, Any], kind: type[msgspec.Struct]) -> Any:
    try:
        return msgspec.convert(claims, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise GrantError(f"the claims are not a grant's: {exc}") from None


def _plan(claims: TokenClaims | PlanClaims) -> dict[str, Any]:
    patterns = tuple(claims.instruments.upper().split())
    if not 0 < len(patterns) <= MAX_PATTERNS:
        raise GrantError(f"the claim instruments must hold 1 to {MAX_PATTERNS} patterns")
    counts = {
        "delay": claims.delay,
        "history_days": claims.history_days,
        "ws_subs": claims.ws_subs,
        "ws_conns": claims.ws_conns,
        "rpm": claims.rpm,
    }
    for name, value in counts.items():
        if not 0 <= value <= MAX_LIMIT:
            raise GrantError(f"the claim {name} must be 0 to {MAX_LIMIT}")
    return {
        "plan": claims.plan,
        "instruments": patterns,
        "delay_s": claims.delay,
        "history_days": claims.history_days,
        "ws_subscriptions": claims.ws_subs,
        "ws_connections": claims.ws_conns,
        "requests_per_minute": claims.rpm,
        "trading": claims.trade,
    }


@lru_cache(maxsize=1024)
def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One expression for all of ``patterns``: ``*`` is any run of characters, everything
    else is itself."""
    alternatives = (".*".join(re.escape(part) for part in p.split("*")) for p in patterns)
    return re.compile("|".join(f"(?:{alternative})" for alternative in alternatives))
