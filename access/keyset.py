"""The one JWKS parser: the auth service's published keys, checked, by ``kid``.

:meth:`KeySet.from_jwks` takes the raw document (at most :data:`MAX_DOCUMENT_BYTES`, at most
:data:`MAX_KEYS` keys) and keeps only what verifies ES256: EC keys on P-256 whose ``alg`` (if
given) is ES256 and ``use`` (if given) is ``sig``. Anything else is a :class:`KeySetError`
naming the key and what is wrong; the whole set is refused, never a part of it silently.
Only the public members are read: a private ``d`` published by mistake is never touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from jwt.exceptions import InvalidKeyError

ALGORITHM: Final = "ES256"
"""The one algorithm the platform signs and accepts."""
MAX_KEYS: Final = 16
MAX_DOCUMENT_BYTES: Final = 64 * 1024
MAX_KID_CHARS: Final = 128


class KeySetError(ValueError):
    """A key set that will not be used (the message says why)."""


@dataclass(frozen=True, slots=True, eq=False)
class KeySet(Mapping[str, ec.EllipticCurvePublicKey]):
    """Public keys by ``kid``: a read-only mapping (two sets are the same only if they are
    one object: a verifier keeps what it learnt until the set is replaced)."""

    by_kid: Mapping[str, ec.EllipticCurvePublicKey]

    @classmethod
    def from_jwks(
        cls, document: bytes, *, check_kid: Callable[[str], None] | None = None
    ) -> KeySet:
        """The keys of the JWKS ``document`` (raw bytes). ``check_kid`` may refuse a ``kid``
        with a ``ValueError`` (the edge takes only names HAProxy can use as file names)."""
        if len(document) > MAX_DOCUMENT_BYTES:
            raise KeySetError(f"the key set is over {MAX_DOCUMENT_BYTES} bytes")
        try:
            parsed = json.loads(document)
        except (ValueError, RecursionError):
            raise KeySetError("the key set is not JSON") from None
        return cls.from_document(parsed, check_kid=check_kid)

    @classmethod
    def from_document(cls, jwks: Any, *, check_kid: Callable[[str], None] | None = None) -> KeySet:
        """The keys of an already parsed JWKS."""
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list):
            raise KeySetError("the key set has no list of keys")
        if len(keys) > MAX_KEYS:
            raise KeySetError(f"the key set holds {len(keys)} keys, at most {MAX_KEYS}")
        found: dict[str, ec.EllipticCurvePublicKey] = {}
        for jwk in keys:
            kid = jwk.get("kid") if isinstance(jwk, dict) else None
            if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_CHARS:
                raise KeySetError(f"a key has no kid (1 to {MAX_KID_CHARS} characters)")
            if kid in found:
                raise KeySetError(f"two keys are named {kid}")
            if check_kid is not None:
                try:
                    check_kid(kid)
                except ValueError as exc:
                    raise KeySetError(f"key {kid!r}: {exc}") from None
            found[kid] = _public_key(kid, jwk)
        return cls(found)

    def __getitem__(self, kid: str) -> ec.EllipticCurvePublicKey:
        return self.by_kid[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_kid)

    def __len__(self) -> int:
        return len(self.by_kid)

    def same_as(self, other: KeySet) -> bool:
        """Whether ``other`` holds the same keys under the same kids."""
        return self.by_kid.keys() == other.by_kid.keys() and all(
            self.pem(kid) == other.pem(kid) for kid in self.by_kid
        )

    def pem(self, kid: str) -> str:
        """The key ``kid`` as SubjectPublicKeyInfo PEM (what HAProxy's ``jwt_verify`` reads)."""
        pem: bytes = self.by_kid[kid].public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode()


def _public_key(kid: str, jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise KeySetError(f"key {kid} is not an EC key on P-256")
    if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise KeySetError(f"key {kid} is not an {ALGORITHM} signing key")
    try:
        members = {name: jwk.get(name) for name in ("kty", "crv", "x", "y")}
        public = ECAlgorithm.from_jwk(json.dumps(members))
    except (InvalidKeyError, ValueError, TypeError):
        raise KeySetError(f"key {kid} is not a valid P-256 public key") from None
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise KeySetError(f"key {kid} is not a public key")
    return public
