"""Refresh-token families: opaque tokens rotated on every use; a reuse revokes the family.

A login starts a family (one session). Each refresh hands in the family's current token and
gets the next one; the one handed in is spent. A spent token handed in again means two
parties hold the family's tokens (one of them stole one), so the whole family is revoked and
everyone must log in again (the scheme of RFC 9700, section 4.14.2).

:class:`RefreshFamily` is the pure state: :meth:`RefreshFamily.use` decides, from the token
handed in and ``now``, what happens, and returns the next state with the outcome. The store
keeps the state and serialises uses of one family (a row lock).

Tokens are 256 random bits, so only their SHA-256 is stored (``docs/auth.md`` says why a
slow hash would add nothing here).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from core.secrets import Secret

TOKEN_BYTES: Final = 32
MAX_TOKEN_CHARS: Final = 128
"""The longest refresh token (or API key) accepted for hashing; ours have 43 characters."""


class Outcome(enum.Enum):
    ROTATED = "rotated"
    """The current token was spent; the family's next token is the new one."""
    REUSED = "reused"
    """A spent token came back: the family is revoked now."""
    REVOKED = "revoked"
    """The family was revoked already (logout, reuse, an administrator)."""
    EXPIRED = "expired"
    """The token or the family outlived its lifetime."""


@dataclass(frozen=True, slots=True)
class FamilyPolicy:
    """Lifetimes, in seconds: of one refresh token (unused that long, the session ends) and of
    a whole family (after that, a login is due whatever happened)."""

    token_ttl_s: int = 14 * 24 * 3600
    family_ttl_s: int = 90 * 24 * 3600

    def __post_init__(self) -> None:
        if not 0 < self.token_ttl_s <= self.family_ttl_s:
            raise ValueError(
                "refresh token lifetimes must be positive, the token's within the family's"
            )


@dataclass(frozen=True, slots=True)
class RefreshFamily:
    family_id: str
    account_id: int
    current_hash: bytes
    """SHA-256 of the one token that may be used next."""
    started_at: int
    token_expires_at: int
    family_expires_at: int
    revoked: str | None = None
    """Why the family was revoked (None: live)."""

    @classmethod
    def start(
        cls, family_id: str, account_id: int, token_hash: bytes, now: int, policy: FamilyPolicy
    ) -> RefreshFamily:
        family_end = now + policy.family_ttl_s
        return cls(
            family_id=family_id,
            account_id=account_id,
            current_hash=token_hash,
            started_at=now,
            token_expires_at=min(now + policy.token_ttl_s, family_end),
            family_expires_at=family_end,
        )

    def use(
        self, presented_hash: bytes, next_hash: bytes, now: int, policy: FamilyPolicy
    ) -> tuple[RefreshFamily, Outcome]:
        """Hand in a token of this family (its hash) at ``now``: the next state and what
        happened. ``next_hash`` becomes current only when the outcome is ``ROTATED``."""
        if self.revoked is not None:
            return self, Outcome.REVOKED
        if not hmac.compare_digest(presented_hash, self.current_hash):
            return self.revoke("reuse"), Outcome.REUSED
        if now >= self.token_expires_at:
            return self, Outcome.EXPIRED
        rotated = dataclasses.replace(
            self,
            current_hash=next_hash,
            token_expires_at=min(now + policy.token_ttl_s, self.family_expires_at),
        )
        return rotated, Outcome.ROTATED

    def revoke(self, reason: str) -> RefreshFamily:
        """The family revoked (kept as it was when revoked already)."""
        return self if self.revoked is not None else dataclasses.replace(self, revoked=reason)


def new_token() -> Secret:
    """A fresh opaque token: 256 random bits, URL-safe base64."""
    return Secret(secrets.token_urlsafe(TOKEN_BYTES))


def token_hash(token: Secret) -> bytes:
    """What is stored of a token: its SHA-256."""
    return hashlib.sha256(token.reveal().encode()).digest()
