"""Signing keys and access tokens: ES256 JWTs with ``kid``, and the JWKS that verifies them.

A :class:`Keyring` is the set of key pairs in use at one moment: it signs with the newest
live key and publishes every key whose tokens may still be valid. Rotation adds a key that is
published at once and signs after a lead time (so that verifiers which copy the keys, such as
the edge, have it before its first token), and retires the previous one at that moment; a
retired key stays in the JWKS for one token lifetime (plus the clock leeway) after its
retirement, so every token it signed verifies until it expires, then it is dropped. Private
keys are :class:`~core.secrets.Secret` PEM texts: they never print.

Tokens are made with PyJWT and checked, here as in every service, by
:class:`access.verify.TokenVerifier` over :meth:`Keyring.key_set`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from access.keyset import KeySet
from auth.claims import AccessClaims
from core.secrets import Secret

ALGORITHM: Final = "ES256"
LEEWAY_S: Final = 30
"""Clock difference tolerated between the auth service and a verifier, in seconds."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key pair: ``kid`` (the RFC 7638 thumbprint of its public key), the private key as
    PKCS#8 PEM, the public one as SubjectPublicKeyInfo PEM (what HAProxy's ``jwt_verify``
    reads), when it was made, from when it signs and, once rotated out, from when it no
    longer does (UNIX seconds). It is published from the moment it is made."""

    kid: str
    private_pem: Secret
    public_pem: str
    created_at: int
    signs_from: int
    retired_at: int | None = None

    def public_jwk(self) -> dict[str, Any]:
        public = serialization.load_pem_public_key(self.public_pem.encode())
        assert isinstance(public, ec.EllipticCurvePublicKey)
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(public, as_dict=True)
        return jwk | {"kid": self.kid, "alg": ALGORITHM, "use": "sig"}


def generate_key(now: int, lead_s: int = 0) -> SigningKey:
    """A new P-256 key pair, made at ``now``, signing ``lead_s`` seconds later."""
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(_thumbprint(jwk), Secret(private_pem), public_pem, now, now + lead_s)


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without spaces, base64url."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class Keyring:
    """The keys in use, newest first, for tokens that live ``token_ttl_s`` seconds."""

    keys: tuple[SigningKey, ...]
    token_ttl_s: int
    _private: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict, repr=False)
    _public: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for key in self.keys:
            private = serialization.load_pem_private_key(key.private_pem.reveal().encode(), None)
            public = serialization.load_pem_public_key(key.public_pem.encode())
            assert isinstance(private, ec.EllipticCurvePrivateKey)
            assert isinstance(public, ec.EllipticCurvePublicKey)
            self._private[key.kid] = private
            self._public[key.kid] = public

    def signer(self, now: int) -> SigningKey | None:
        """The key that signs at ``now``: the newest whose time has come and not gone."""
        live = [
            key
            for key in self.keys
            if key.signs_from <= now and (key.retired_at is None or now < key.retired_at)
        ]
        return max(live, key=lambda key: key.signs_from) if live else None

    def published(self, now: int) -> list[SigningKey]:
        """The keys whose tokens may still be valid at ``now``: the live ones, and the retired
        ones for a token lifetime (and the leeway) after their retirement."""
        keep = self.token_ttl_s + LEEWAY_S
        return [key for key in self.keys if key.retired_at is None or now < key.retired_at + keep]

    def jwks(self, now: int) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.published(now)]}

    def sign(self, claims: AccessClaims) -> str:
        """The signed token (``RuntimeError`` when there is no live key: run rotate-keys)."""
        key = self.signer(claims.issued_at)
        if key is None:
            raise RuntimeError("no signing key: run `mdp auth rotate-keys`")
        return jwt.encode(
            claims.payload(), self._private[key.kid], algorithm=ALGORITHM, headers={"kid": key.kid}
        )

    def key_set(self, now: int) -> KeySet:
        """The published keys as :mod:`access` reads them (the one way to verify a token is
        :class:`access.verify.TokenVerifier` over this set)."""
        return KeySet.from_document(self.jwks(now))
