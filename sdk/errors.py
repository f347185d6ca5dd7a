"""The one error the SDK raises: :class:`SdkError`, with a code of ours or the service's."""

from __future__ import annotations

from typing import Final

UNAUTHORIZED: Final = "unauthorized"
"""The gateway refused the token (close 4401): refused, expired, or none where one is needed."""
REVOKED: Final = "revoked"
"""The key, session or account of the token was revoked (close 4403)."""
TOO_MANY_CONNECTIONS: Final = "too_many_connections"
"""The plan's connections are all in use, or the connection flooded the gateway (close 4429)."""
FRAME_TOO_LARGE: Final = "frame_too_large"
"""The gateway closed the connection for a frame above its limit (close 1009)."""
STREAM_CLOSED: Final = "stream_closed"
"""The stream was closed, or is not open yet."""
AUTH_UNAVAILABLE: Final = "auth_unavailable"
"""The auth service could not be reached, or its answer was not what the protocol says."""
TRADING_UNAVAILABLE: Final = "trading_unavailable"
"""The trading API could not be reached (after the retries a call is allowed), answered 5xx
without a problem, or answered what the API does not say."""


class SdkError(Exception):
    """A refusal or failure the bot cannot fix by waiting: ``code`` names it.

    The codes are the SDK's own (the constants of this module) or the service's, passed on
    as it sent them (an auth problem's ``invalid-api-key``, a gateway error's
    ``unknown_instrument``, a trading problem's ``buying-power``). ``field`` is the request's
    field at fault when the service names one (``quantity``), ``status`` the HTTP status of
    a refusal, ``kind`` its problem type (``order-denied``). ``str()`` is ``"code: message"``
    (with the field); it never holds a secret.
    """

    def __init__(
        self, code: str, message: str, *, field: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(f"{code}: {message}" + (f" (field {field})" if field else ""))
        self.code = code
        self.message = message
        self.field = field
        self.status = status
        self.kind: str | None = None
        self.repeated = False
        """The refusal answered a request sent again (the first send's answer was lost)."""
