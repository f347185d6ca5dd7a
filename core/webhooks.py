"""Webhook signatures (pure: no clock, no I/O): how the main API signs what it POSTs to an
account's webhook, and how a receiver checks it (``docs/main-api.md``, "Webhooks").

Each POST carries the header ``Ganntec-Signature: t=<unix seconds>,v1=<hex>``: ``v1`` is the
HMAC-SHA256, keyed with the endpoint's secret (its UTF-8 bytes), of ``f"{t}."`` followed by
the exact body bytes. Signing the time with the body lets a receiver refuse a request captured
and sent again later: :func:`verify` accepts a signature only within ``tolerance_s`` of its own
clock. While a secret is being rotated the header holds one ``v1`` per live secret; any one
that matches is enough. Signatures are compared in constant time.

The SDK exposes :func:`verify` to receivers (``sdk.webhooks``); the main API signs with
:func:`signature_header`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Final

SIGNATURE_HEADER: Final = "Ganntec-Signature"
EVENT_ID_HEADER: Final = "Ganntec-Event-Id"
"""The event's id (an alert firing's ``fire_id``): the same on every attempt and replay, so
a receiver drops a repeat."""
ATTEMPT_HEADER: Final = "Ganntec-Delivery-Attempt"
SCHEME: Final = "v1"
DEFAULT_TOLERANCE_S: Final = 300
"""How far (seconds) a signature's time may be from the receiver's clock: five minutes."""
MAX_HEADER_CHARS: Final = 1024


class SignatureError(ValueError):
    """A signature refused; ``reason`` is ``malformed``, ``too-old`` (outside the tolerance,
    either way) or ``mismatch``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` signature: hex HMAC-SHA256 of ``f"{timestamp}." + body`` keyed by
    ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode(), hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """The header's value for ``body`` sent at ``timestamp`` (unix seconds), one ``v1`` per
    secret (the current one first)."""
    parts = [f"t={timestamp}"]
    parts.extend(f"{SCHEME}={signature(secret, timestamp, body)}" for secret in secrets)
    return ",".join(parts)


def parse_header(header: str) -> tuple[int, list[str]]:
    """The time and the ``v1`` signatures of a header (other schemes are passed over)."""
    if len(header) > MAX_HEADER_CHARS:
        raise SignatureError("malformed", "the signature header is too long")
    timestamp: int | None = None
    found: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed", f"not key=value: {part[:32]!r}")
        if key == "t":
            whole = value.isascii() and value.isdigit()  # int() takes "²" and Arabic digits too
            if not whole or len(value) > 12 or timestamp is not None:
                raise SignatureError("malformed", "t must be one whole number of seconds")
            timestamp = int(value)
        elif key == SCHEME:
            found.append(value)
    if timestamp is None or not found:
        raise SignatureError("malformed", f"the header needs t= and at least one {SCHEME}=")
    return timestamp, found


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> int:
    """Check that ``header`` (the ``Ganntec-Signature`` value) signs ``body`` (the raw bytes
    received, before any parsing) with ``secret``, at a time within ``tolerance_s`` of ``now``
    (unix seconds: ``time.time()``). Returns the signed time; raises :class:`SignatureError`
    otherwise."""
    timestamp, given = parse_header(header)
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(
            "too-old", f"signed at {timestamp}, more than {tolerance_s:g} s from now"
        )
    expected = signature(secret, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in given):
        raise SignatureError("mismatch", "no signature matches this secret and body")
    return timestamp
