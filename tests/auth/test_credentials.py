"""Passwords (Argon2id, bounded, the same work for unknown accounts) and API keys (a public id
and a secret shown once, stored hashed)."""

from __future__ import annotations

import pytest

from auth.api_keys import check_name, check_scopes, new_key, secret_matches, split_key
from auth.families import token_hash
from auth.passwords import check_email, check_password, hash_password, verify_password
from core.secrets import Secret


def test_a_password_verifies_against_its_hash_only() -> None:
    stored = hash_password(Secret("correct horse battery"))
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, Secret("correct horse battery"))
    assert not verify_password(stored, Secret("correct horse battery!"))
    assert not verify_password(None, Secret("correct horse battery"))
    assert not verify_password("not a hash", Secret("correct horse battery"))


@pytest.mark.parametrize("length", [9, 257])
def test_a_password_out_of_bounds_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="a password has 10 to 256 characters"):
        check_password(Secret("x" * length))


@pytest.mark.parametrize("email", ["no-at-sign", "a@b", "a b@x.org", "x" * 250 + "@x.org"])
def test_a_malformed_email_is_refused(email: str) -> None:
    with pytest.raises(ValueError, match="an email address looks like"):
        check_email(email)


@pytest.mark.parametrize("email", ["a\x00@x.org", "a@x.org\x00", "a\x1b[2J@x.org", "a@x\x7f.org"])
def test_an_email_with_a_control_character_is_refused(email: str) -> None:
    with pytest.raises(ValueError, match="an email address has no control characters"):
        check_email(email)


def test_an_email_is_canonical() -> None:
    assert check_email("  Ada@Example.ORG ") == "ada@example.org"


def test_a_key_is_its_id_and_a_secret_of_which_only_the_hash_is_kept() -> None:
    issued = new_key()
    presented = issued.presented()
    assert presented.reveal().startswith(issued.key_id + ".")
    assert issued.secret.reveal() not in f"{issued} {presented}"
    split = split_key(presented)
    assert split is not None
    key_id, hashed = split
    assert key_id == issued.key_id
    assert secret_matches(hashed, token_hash(issued.secret))
    rotated = new_key(issued.key_id)
    assert rotated.key_id == issued.key_id
    assert not secret_matches(token_hash(rotated.secret), hashed)


@pytest.mark.parametrize("text", ["", "k_123.abc", "nodot", "k_" + "0" * 20 + ".", "x" * 200])
def test_a_malformed_key_is_not_split(text: str) -> None:
    assert split_key(Secret(text)) is None


def test_scopes_and_names_are_checked() -> None:
    assert check_scopes(["trade", "read"]) == ("read", "trade")
    with pytest.raises(ValueError, match="unknown scope 'admin'"):
        check_scopes(["admin"])
    with pytest.raises(ValueError, match="at least one scope"):
        check_scopes([])
    assert check_name("ci bot (prod)") == "ci bot (prod)"
    with pytest.raises(ValueError, match="a key name has"):
        check_name("x" * 65)
