"""The auth service's settings: one frozen object, made by the entry point (``mdp auth``)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Final

from access.verify import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from auth.families import FamilyPolicy
from auth.plans import PlanBook, load_plans
from auth.throttle import LoginRates

__all__ = ["DEFAULT_AUDIENCE", "DEFAULT_ISSUER", "MAX_BODY_BYTES", "AuthSettings"]
MAX_BODY_BYTES: Final = 16 * 1024
"""The largest request body the routes read (every body here is a small JSON object)."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``access_ttl_s``: an access token's lifetime; ``key_reload_s``: how often the signing
    keys are read again (so a rotation by ``mdp auth rotate-keys`` reaches every instance);
    ``relay_poll_s``: how often the outbox of ``auth.events`` is read when nothing woke it;
    ``prune_every_s``: how often dead sessions are deleted (the start deletes them too)."""

    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    access_ttl_s: int = 300
    refresh: FamilyPolicy = field(default_factory=FamilyPolicy)
    signup: bool = True
    plans: PlanBook = field(default_factory=load_plans)
    login_rates: LoginRates = field(default_factory=LoginRates)
    key_reload_s: float = 10.0
    relay_poll_s: float = 0.25
    prune_every_s: float = 3600.0
    max_body_bytes: int = MAX_BODY_BYTES
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (the edge's) whose ``X-Forwarded-For`` names the client; from
    any other peer the header is ignored. None by default: the peer is the client."""

    def __post_init__(self) -> None:
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"trusted proxy {proxy!r} is not an address or network") from None
        if not 10 <= self.access_ttl_s <= 24 * 3600:
            raise ValueError("the access token lifetime must be 10 s to 24 h")
        if not (self.issuer and self.audience):
            raise ValueError("the issuer and the audience must not be empty")
