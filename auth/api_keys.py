"""API keys for bots: a public id and a secret, presented together as ``<id>.<secret>``.

The secret is shown once, when the key is issued or rotated; only its SHA-256 is stored. A
secret of 256 random bits cannot be guessed, so a slow password hash would only make every
token exchange slower without making a stolen hash any easier to reverse (``docs/auth.md``).
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from auth.claims import SCOPES
from auth.families import MAX_TOKEN_CHARS, TOKEN_BYTES, token_hash
from core.secrets import Secret

KEY_ID: Final = re.compile(r"k_[0-9a-f]{20}")
_NAME: Final = re.compile(r"[\w .:/@()-]{1,64}")
MAX_NAME_CHARS: Final = 64


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just issued or rotated: the only moment its secret exists in plain text."""

    key_id: str
    secret: Secret

    def presented(self) -> Secret:
        """The whole key as a bot presents it: ``<id>.<secret>``."""
        return Secret(f"{self.key_id}.{self.secret.reveal()}")


def new_key(key_id: str | None = None) -> IssuedKey:
    """A new key (a new secret for ``key_id`` when rotating)."""
    return IssuedKey(
        key_id or f"k_{secrets.token_hex(10)}", Secret(secrets.token_urlsafe(TOKEN_BYTES))
    )


def split_key(presented: Secret) -> tuple[str, bytes] | None:
    """The key id and the secret's hash of a presented key; None when it is malformed."""
    text = presented.reveal()
    if len(text) > MAX_TOKEN_CHARS:
        return None
    key_id, dot, secret = text.partition(".")
    if not dot or KEY_ID.fullmatch(key_id) is None or not secret:
        return None
    return key_id, token_hash(Secret(secret))


def secret_matches(presented_hash: bytes, stored_hash: bytes) -> bool:
    """Whether two secret hashes are equal, compared in constant time."""
    return hmac.compare_digest(presented_hash, stored_hash)


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The scopes, checked (``ValueError`` names an unknown one), in canonical order."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}: the scopes are {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError("a key needs at least one scope")
    return tuple(scope for scope in SCOPES if scope in scopes)


def check_name(name: str) -> str:
    """A key's name, checked: 1 to 64 letters, digits, spaces and ``.:/@()-_``."""
    if _NAME.fullmatch(name) is None:
        raise ValueError(
            f"a key name has 1 to {MAX_NAME_CHARS} letters, digits, spaces and . : / @ ( ) - _"
        )
    return name
