"""Webhook signatures: the header signs the time with the exact body, any live secret's
signature passes, and a receiver refuses a changed body, another secret, a time outside its
window and a malformed header, each with its reason."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from core.webhooks import SignatureError, parse_header, signature_header, verify
from sdk import webhooks as sdk_webhooks

SECRET, OTHER = "whsec_first", "whsec_second"
BODY = b'{"id":"a-1:1","type":"alert.fired"}'
T = 1_700_000_000


def test_the_signature_is_an_hmac_sha256_of_the_time_and_the_body() -> None:
    header = signature_header([SECRET], T, BODY)
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"
    assert verify(SECRET, BODY, header, now=T + 10) == T
    assert sdk_webhooks.verify is verify


def test_while_a_secret_is_rotated_either_one_verifies() -> None:
    header = signature_header([OTHER, SECRET], T, BODY)
    assert len(parse_header(header)[1]) == 2
    assert verify(SECRET, BODY, header, now=T) == verify(OTHER, BODY, header, now=T) == T


@pytest.mark.parametrize(
    ("secret", "body", "header", "now", "reason"),
    [
        (SECRET, BODY + b" ", signature_header([SECRET], T, BODY), T, "mismatch"),
        (OTHER, BODY, signature_header([SECRET], T, BODY), T, "mismatch"),
        (SECRET, BODY, signature_header([SECRET], T, BODY), T + 301, "too-old"),
        (SECRET, BODY, signature_header([SECRET], T, BODY), T - 301, "too-old"),
        (SECRET, BODY, f"t={T}", T, "malformed"),
        (SECRET, BODY, "v1=00", T, "malformed"),
        (SECRET, BODY, f"t=x,v1={'0' * 64}", T, "malformed"),
        (SECRET, BODY, f"t=\u00b2,v1={'0' * 64}", T, "malformed"),  # a digit to isdigit()
        (SECRET, BODY, f"t=\u0661\u0662,v1={'0' * 64}", T, "malformed"),  # Arabic-Indic
        (SECRET, BODY, f"t={T},t={T},v1=00", T, "malformed"),
        (SECRET, BODY, "garbage", T, "malformed"),
        (SECRET, BODY, f"t={T},v1=" + "0" * 2000, T, "malformed"),
        (SECRET, BODY, f"t={T},v1=é", T, "mismatch"),
    ],
)
def test_a_receiver_refuses_what_the_secret_did_not_sign_now(
    secret: str, body: bytes, header: str, now: int, reason: str
) -> None:
    with pytest.raises(SignatureError) as refused:
        verify(secret, body, header, now=now)
    assert refused.value.reason == reason


def test_the_tolerance_is_the_receivers_choice() -> None:
    header = signature_header([SECRET], T, BODY)
    assert verify(SECRET, BODY, header, now=T + 3600, tolerance_s=3600) == T
    with pytest.raises(SignatureError):
        verify(SECRET, BODY, header, now=T + 2, tolerance_s=1)
