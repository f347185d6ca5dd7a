"""Checking a webhook from the main API in a receiver (``docs/main-api.md``, "Webhooks"):
:func:`verify` the ``Ganntec-Signature`` header against the raw body and the endpoint's
secret before trusting what it says, and drop an event whose ``Ganntec-Event-Id`` was seen.
"""

from core.webhooks import (
    DEFAULT_TOLERANCE_S,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    verify,
)

__all__ = ["DEFAULT_TOLERANCE_S", "EVENT_ID_HEADER", "SIGNATURE_HEADER", "SignatureError", "verify"]
