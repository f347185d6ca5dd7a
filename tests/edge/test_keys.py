"""The edge's keys from the auth service's JWKS: every published ES256 key becomes a PEM file
that verifies its tokens; anything else is refused with our own message."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from auth.signing import generate_key
from edge.keys import KeySetError, parse_jwks, public_keys, write_keys


def jwks_of(*kids: str) -> dict[str, Any]:
    keys = [generate_key(int(time.time())) for _ in kids]
    return {"keys": [key.public_jwk() for key in keys]}


def test_each_published_key_becomes_a_pem_that_verifies_its_tokens() -> None:
    key = generate_key(int(time.time()))
    token = jwt.encode({"sub": "a"}, key.private_pem.reveal(), "ES256", {"kid": key.kid})
    pems = parse_jwks(json.dumps({"keys": [key.public_jwk()]}).encode())
    assert list(pems) == [key.kid]
    assert jwt.decode(token, pems[key.kid], algorithms=["ES256"]) == {"sub": "a"}


def test_writing_keys_replaces_the_folder_s_set(tmp_path: Path) -> None:
    first = public_keys(jwks_of("a", "b"))
    written = write_keys(tmp_path, first)
    assert sorted(path.name for path in tmp_path.glob("*.pem")) == sorted(f"{k}.pem" for k in first)
    assert [key.kid for key in written] == sorted(first)
    later = dict(list(first.items())[1:])
    write_keys(tmp_path, later)
    assert [path.stem for path in tmp_path.glob("*.pem")] == list(later)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"[", "the key set is not JSON"),
        (b"x" * (64 * 1024 + 1), "the key set is over 65536 bytes"),
        (b"[]", "the key set has no list of keys"),
        (b'{"keys": {}}', "the key set has no list of keys"),
        (b'{"keys": [{"kty": "EC"}]}', "a key has no kid"),
        (b'{"keys": [{"kid": "a b", "kty": "EC"}]}', "'a b' is not a name HAProxy takes"),
        (b'{"keys": [{"kid": "k", "kty": "RSA", "e": "AQAB"}]}', "key k is not an EC key"),
        (b'{"keys": [{"kid": "k", "kty": "EC", "crv": "P-384"}]}', "key k is not an EC key"),
        (b'{"keys": [{"kid": "k", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}',
         "key k is not a valid P-256 public key"),
    ],
)  # fmt: skip
def test_a_key_set_the_edge_will_not_use_is_refused(document: bytes, message: str) -> None:
    with pytest.raises(KeySetError, match=message):
        parse_jwks(document)


def test_a_key_for_another_use_or_algorithm_is_refused() -> None:
    jwks = jwks_of("a")
    for change in ({"alg": "ES384"}, {"use": "enc"}):
        key = jwks["keys"][0] | change
        with pytest.raises(KeySetError, match="is not an ES256 signing key"):
            public_keys({"keys": [key]})


def test_too_many_or_twice_named_keys_are_refused() -> None:
    one = jwks_of("a")["keys"][0]
    with pytest.raises(KeySetError, match="two keys are named"):
        public_keys({"keys": [one, one]})
    with pytest.raises(KeySetError, match="at most 16"):
        public_keys({"keys": [one] * 17})
