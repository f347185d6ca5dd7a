"""Our secrets are masked in any text a log line may carry; what is not a secret is left."""

from __future__ import annotations

import hashlib

import pytest

from auth.api_keys import new_key
from auth.families import new_token
from telemetry.redaction import redact

JWT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0"
    ".eyJzdWIiOiJrZXk6a18xIiwiZXhwIjoxNzAwMDAwMDAwfQ"
    ".MEUCIQDf3v0nq1x2y3z4a5b6c7d8e9f0g1h2i3j4k5l6m7n8o9"
)


def test_an_api_key_keeps_its_id_and_loses_its_secret() -> None:
    key = new_key()
    presented = key.presented().reveal()
    masked = redact(f"token exchange for {presented} refused")
    assert masked == f"token exchange for {key.key_id}.*** refused"
    assert key.secret.reveal() not in masked


def test_a_token_without_a_digit_is_masked_too() -> None:
    token = "RGjGCznEXqwRiKhtFRpYcGrpHtvlsmUZUroFQmYqvHA"  # one a CI run printed unmasked
    assert redact(f"refresh {token}.") == "refresh ***."


def test_refresh_tokens_and_bare_key_secrets_are_masked_wherever_they_sit() -> None:
    for _ in range(50):  # random tokens: every one of many
        token = new_token().reveal()
        for text in (token, f"refresh {token}.", f'{{"refresh_token": "{token}"}}'):
            assert token not in redact(text)


def test_a_jwt_and_a_bearer_header_are_masked() -> None:
    assert redact(f"GET /ws?token={JWT} 401") == "GET /ws?token=*** 401"
    assert redact("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"
    assert JWT not in redact(f"claims of {JWT[:-3]}")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "cannot use postgresql://app:s3cr%40t@db:5432/market",
            "cannot use postgresql://app:***@db:5432/market",
        ),
        ("host=db password='it\\'s' user=app", "host=db password='***' user=app"),
        ("postgresql://db/market?password=hunter2&sslmode=require",
         "postgresql://db/market?password=***&sslmode=require"),
        ('{"email": "a@example.org", "password": "a long \\"one\\""}',
         '{"email": "a@example.org", "password": "***"}'),
        ("{'secret': 'abc', 'name': 'bot'}", "{'secret': '***', 'name': 'bot'}"),
        ("api_key=k_x.y&page=2", "api_key=***&page=2"),
    ],
)  # fmt: skip
def test_passwords_in_urls_and_fields_named_like_secrets_are_masked(text: str, masked: str) -> None:
    assert redact(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "candle SYNTH:BTCUSD 1m closed at 2026-12-04T18:00:00Z (revision 2)",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
        "sha256 " + hashlib.sha256(b"a file's content").hexdigest(),
        "key k_0123456789abcdef0123 revoked; token expired",
        "https://ganntec.dev/problems/invalid-token",
        "postgresql://app@db:5432/market",
        "a_long_snake_case_identifier_of_43_characte",
        "already masked: password=*** token=***",
    ],
)
def test_text_without_secrets_is_left_as_it_is(text: str) -> None:
    assert redact(text) == text
