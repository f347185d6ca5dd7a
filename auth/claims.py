"""The claims of an access token: who it is for and what its plan lets them do.

Every claim is flat and a JSON string, number or boolean (the instrument patterns are one
space-separated string), so HAProxy 2.6 can read any of them with ``jwt_payload_query``
(``$.plan``, ``$.rpm``), which reads top-level members only. ``aud`` is one string, not a
list, for the same reason.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final, Literal

from auth.plans import Plan
from core.auth_events import PlanClaims

PrincipalKind = Literal["account", "key"]
SCOPES: Final = ("read", "trade")
"""What a token may be used for; an account's tokens carry both, a key's what it was given."""


@dataclass(frozen=True, slots=True)
class Entitlements:
    """What a plan grants, as carried in a token."""

    plan: str
    instruments: tuple[str, ...]
    delay_s: int
    history_days: int
    ws_subscriptions: int
    ws_connections: int
    requests_per_minute: int
    trading: bool

    @classmethod
    def of(cls, plan: Plan) -> Entitlements:
        return cls(
            plan=plan.name,
            instruments=plan.instruments,
            delay_s=plan.delay_s,
            history_days=plan.history_days,
            ws_subscriptions=plan.ws_subscriptions,
            ws_connections=plan.ws_connections,
            requests_per_minute=plan.requests_per_minute,
            trading=plan.trading,
        )

    def plan_claims(self) -> PlanClaims:
        """The claims as ``auth.events`` and the services carry a plan."""
        return PlanClaims(**self.claims())

    def claims(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "instruments": " ".join(self.instruments),
            "delay": self.delay_s,
            "history_days": self.history_days,
            "ws_subs": self.ws_subscriptions,
            "ws_conns": self.ws_connections,
            "rpm": self.requests_per_minute,
            "trade": self.trading,
        }


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """One access token's payload before signing.

    ``sub`` is ``account:<id>`` or ``key:<key id>``; ``sid`` is the refresh-token family of an
    account's session (empty for a key), so that a revoked session names its tokens;
    ``trade`` is true only when the plan allows trading *and* the scopes include ``trade``.
    """

    issuer: str
    audience: str
    subject: str
    kind: PrincipalKind
    account_id: int
    session: str
    scopes: tuple[str, ...]
    entitlements: Entitlements
    issued_at: int
    expires_at: int
    token_id: str

    def payload(self) -> dict[str, Any]:
        granted = self.entitlements.claims()
        granted["trade"] = granted["trade"] and "trade" in self.scopes
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.subject,
            "iat": self.issued_at,
            "nbf": self.issued_at,
            "exp": self.expires_at,
            "jti": self.token_id,
            "kind": self.kind,
            "acct": self.account_id,
            "sid": self.session,
            "scope": " ".join(self.scopes),
            **granted,
        }


def access_claims(
    *,
    issuer: str,
    audience: str,
    kind: PrincipalKind,
    principal: str | int,
    account_id: int,
    session: str,
    scopes: tuple[str, ...],
    plan: Plan,
    now: int,
    ttl_s: int,
) -> AccessClaims:
    """The claims of a token for ``principal`` (an account id or a key id) on ``plan``,
    issued at ``now`` (UNIX seconds) and valid ``ttl_s`` seconds."""
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {' '.join(sorted(unknown))}")
    return AccessClaims(
        issuer=issuer,
        audience=audience,
        subject=f"{kind}:{principal}",
        kind=kind,
        account_id=account_id,
        session=session,
        scopes=tuple(scope for scope in SCOPES if scope in scopes),
        entitlements=Entitlements.of(plan),
        issued_at=now,
        expires_at=now + ttl_s,
        token_id=uuid.uuid4().hex,
    )
