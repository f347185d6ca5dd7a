"""The one JWKS parser: the published ES256 keys by kid; anything else refused whole, with
our own message; bounded in bytes and keys."""

from __future__ import annotations

import json

import pytest

from access.keyset import MAX_DOCUMENT_BYTES, MAX_KEYS, KeySet, KeySetError
from tests.support import tokens


def test_the_published_keys_are_read_by_kid() -> None:
    keys = KeySet.from_jwks(tokens.jwks(tokens.KEY, tokens.OTHER_KEY))
    assert set(keys) == {tokens.KEY.kid, tokens.OTHER_KEY.kid}
    assert keys.pem(tokens.KEY.kid) == tokens.KEY.public_pem
    assert keys.same_as(KeySet.from_jwks(tokens.jwks(tokens.OTHER_KEY, tokens.KEY)))
    assert not keys.same_as(KeySet.from_jwks(tokens.jwks()))


def test_a_private_member_is_never_read() -> None:
    jwk = tokens.KEY.public_jwk() | {"d": "not-even-a-key"}
    keys = KeySet.from_jwks(json.dumps({"keys": [jwk]}).encode())
    assert keys.pem(tokens.KEY.kid) == tokens.KEY.public_pem


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"x" * (MAX_DOCUMENT_BYTES + 1), f"over {MAX_DOCUMENT_BYTES} bytes"),
        (b"{", "not JSON"),
        (b"[" * 60_000, "not JSON"),
        (b'{"keys": 1}', "no list of keys"),
        (b'{"keys": [{"kty": "EC"}]}', "a key has no kid"),
        (b'{"keys": [{"kid": "' + b"k" * 129 + b'"}]}', "a key has no kid"),
        (b'{"keys": [{"kid": "k", "kty": "oct", "k": "c2VjcmV0"}]}', "not an EC key on P-256"),
        (b'{"keys": [{"kid": "k", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}',
         "not a valid P-256 public key"),
    ],
)  # fmt: skip
def test_a_bad_key_set_is_refused_whole(document: bytes, message: str) -> None:
    with pytest.raises(KeySetError, match=message):
        KeySet.from_jwks(document)


def test_too_many_keys_a_twice_named_key_or_another_algorithm_are_refused() -> None:
    jwk = tokens.KEY.public_jwk()
    for keys, message in (
        ([jwk] * (MAX_KEYS + 1), f"at most {MAX_KEYS}"),
        ([jwk, jwk], "two keys are named"),
        ([jwk | {"alg": "HS256"}], "not an ES256 signing key"),
        ([jwk | {"use": "enc"}], "not an ES256 signing key"),
    ):
        with pytest.raises(KeySetError, match=message):
            KeySet.from_document({"keys": keys})


def test_a_caller_may_refuse_a_kid() -> None:
    def no_dashes(kid: str) -> None:
        if "-" in kid:
            raise ValueError("no dashes")

    jwk = tokens.KEY.public_jwk() | {"kid": "a-b"}
    with pytest.raises(KeySetError, match="key 'a-b': no dashes"):
        KeySet.from_document({"keys": [jwk]}, check_kid=no_dashes)
