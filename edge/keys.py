"""The edge's public keys, from the auth service's JWKS: parsed by the one JWKS parser
(:class:`access.keyset.KeySet`), turned into the PEM files HAProxy's ``jwt_verify`` reads,
and written into the edge's folder.

:func:`public_keys` is pure: a parsed JWKS document in, ``kid`` → PEM out, or
:class:`KeySetError` naming what is wrong. On top of what :mod:`access.keyset` checks (ES256
keys on P-256, at most :data:`MAX_KEYS`), a ``kid`` must be a name HAProxy takes, since it
becomes a file name. :func:`write_keys` writes them and removes the files of keys no longer
published, so a retired key stops verifying at the next reload.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from access.keyset import MAX_DOCUMENT_BYTES, MAX_KEYS, KeySet, KeySetError
from edge.config import VerifyKey

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_KEYS",
    "KeySetError",
    "parse_jwks",
    "pems_of",
    "public_keys",
    "write_keys",
]


def _haproxy_name(kid: str) -> None:
    VerifyKey(kid, Path(f"{kid}.pem"))  # raises ValueError for a name HAProxy does not take


def _pems(keys: KeySet) -> dict[str, str]:
    return {kid: keys.pem(kid) for kid in keys}


def parse_jwks(document: bytes) -> dict[str, str]:
    """``kid`` → PEM of the JWKS ``document`` (raw bytes, at most 64 KiB)."""
    return _pems(KeySet.from_jwks(document, check_kid=_haproxy_name))


def public_keys(jwks: Any) -> dict[str, str]:
    """``kid`` → SubjectPublicKeyInfo PEM for every key of ``jwks``."""
    return _pems(KeySet.from_document(jwks, check_kid=_haproxy_name))


def pems_of(keys: KeySet) -> dict[str, str]:
    """``kid`` → PEM of a key set parsed elsewhere (:class:`access.jwks.JwksCache`), each
    ``kid`` checked as a name HAProxy takes."""
    for kid in keys:
        try:
            _haproxy_name(kid)
        except ValueError as exc:
            raise KeySetError(f"key {kid!r}: {exc}") from None
    return _pems(keys)


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
