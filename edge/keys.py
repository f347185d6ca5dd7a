"""The edge's public keys, from the auth service's JWKS: checked, turned into the PEM files
HAProxy's ``jwt_verify`` reads, and written into the edge's folder.

:func:`public_keys` is pure: a parsed JWKS document in, ``kid`` → PEM out, or
:class:`KeySetError` naming what is wrong. Only ES256 keys on P-256 are taken (the one
algorithm the edge accepts), at most :data:`MAX_KEYS`. :func:`write_keys` writes them and
removes the files of keys no longer published, so a retired key stops verifying at the next
reload.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from jwt.exceptions import InvalidKeyError

from edge.config import TOKEN_ALGORITHM, VerifyKey

MAX_KEYS: Final = 16
MAX_DOCUMENT_BYTES: Final = 64 * 1024


class KeySetError(ValueError):
    """A JWKS the edge will not use (the message says why)."""


def parse_jwks(document: bytes) -> dict[str, str]:
    """``kid`` → PEM of the JWKS ``document`` (raw bytes, at most 64 KiB)."""
    if len(document) > MAX_DOCUMENT_BYTES:
        raise KeySetError(f"the key set is over {MAX_DOCUMENT_BYTES} bytes")
    try:
        parsed = json.loads(document)
    except (ValueError, RecursionError):
        raise KeySetError("the key set is not JSON") from None
    return public_keys(parsed)


def public_keys(jwks: Any) -> dict[str, str]:
    """``kid`` → SubjectPublicKeyInfo PEM for every key of ``jwks``."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise KeySetError("the key set has no list of keys")
    if len(keys) > MAX_KEYS:
        raise KeySetError(f"the key set holds {len(keys)} keys, at most {MAX_KEYS}")
    found: dict[str, str] = {}
    for jwk in keys:
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        if not isinstance(kid, str):
            raise KeySetError("a key has no kid")
        if kid in found:
            raise KeySetError(f"two keys are named {kid}")
        try:
            VerifyKey(kid, Path(f"{kid}.pem"))  # the kid must be a name HAProxy takes
        except ValueError as exc:
            raise KeySetError(f"key {kid!r}: {exc}") from None
        found[kid] = _pem(kid, jwk)
    return found


def _pem(kid: str, jwk: dict[str, Any]) -> str:
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise KeySetError(f"key {kid} is not an EC key on P-256")
    if jwk.get("alg", TOKEN_ALGORITHM) != TOKEN_ALGORITHM or jwk.get("use", "sig") != "sig":
        raise KeySetError(f"key {kid} is not an {TOKEN_ALGORITHM} signing key")
    try:
        # the public members only: a "d" (a private key published by mistake) is never read
        members = {name: jwk.get(name) for name in ("kty", "crv", "x", "y")}
        public = ECAlgorithm.from_jwk(json.dumps(members))
    except (InvalidKeyError, ValueError, TypeError):
        raise KeySetError(f"key {kid} is not a valid P-256 public key") from None
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise KeySetError(f"key {kid} is not a public key")
    pem: bytes = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def write_keys(folder: Path, keys: dict[str, str]) -> tuple[VerifyKey, ...]:
    """Write ``keys`` as ``<kid>.pem`` into ``folder`` (each file replaced whole), remove the
    files of other keys, and return the keys for :class:`edge.config.TokenPolicy`."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for kid, pem in keys.items():
        target = folder / f"{kid}.pem"
        partial = folder / f".{kid}.pem.new"
        partial.write_text(pem)
        os.replace(partial, target)
    for stale in folder.glob("*.pem"):
        if stale.stem not in keys:
            stale.unlink()
    return tuple(VerifyKey(kid, (folder / f"{kid}.pem").absolute()) for kid in sorted(keys))
