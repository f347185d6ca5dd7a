"""The auth service's errors as RFC 9457 problem details, with our own codes.

A :class:`AuthError` names a code of :data:`CODES`; the code fixes the HTTP status and the
title, the detail says what happened in this case. The body's ``type`` ends with the code
(``https://ganntec.dev/problems/invalid-credentials``), and ``code`` repeats it.
"""

from __future__ import annotations

from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
_TYPE_BASE: Final = "https://ganntec.dev/problems/"
RETRY_AFTER_S: Final = 5
"""What a 503 asks a client to wait before it tries again, in seconds."""

CODES: Final = {
    "invalid-request": (400, "Invalid request"),
    "invalid-credentials": (401, "Invalid credentials"),
    "invalid-token": (401, "Invalid token"),
    "invalid-refresh-token": (401, "Invalid refresh token"),
    "refresh-token-reused": (401, "Refresh token reused"),
    "invalid-api-key": (401, "Invalid API key"),
    "account-disabled": (403, "Account disabled"),
    "account-token-required": (403, "Account token required"),
    "signup-disabled": (403, "Signup disabled"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "account-exists": (409, "Account exists"),
    "content-too-large": (413, "Content too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "too-many-attempts": (429, "Too many attempts"),
    "database-unavailable": (503, "Database unavailable"),
}


class AuthError(Exception):
    """An error answer: ``code`` is one of :data:`CODES`."""

    def __init__(self, code: str, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title = CODES[code]
        self.code = code
        self.detail = detail
        self.headers = headers or {}

    def response(self) -> Response:
        body = {
            "type": _TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        return Response(
            msgspec.json.encode(body),
            status_code=self.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=self.headers | {"Cache-Control": "no-store"},
        )


def too_many_attempts(wait_s: float) -> AuthError:
    seconds = max(1, int(wait_s + 0.999))
    return AuthError(
        "too-many-attempts",
        f"too many login attempts; try again in {seconds}s",
        headers={"Retry-After": str(seconds)},
    )


def database_unavailable() -> AuthError:
    return AuthError(
        "database-unavailable",
        f"the auth database is unavailable; try again in {RETRY_AFTER_S}s",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    return exc.response()


async def unavailable_handler(request: Request, exc: Exception) -> Response:
    return database_unavailable().response()


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's 404 and 405 as problems too."""
    status = int(getattr(exc, "status_code", 404))
    code = "method-not-allowed" if status == 405 else "not-found"
    headers = dict(getattr(exc, "headers", None) or {})
    detail = f"{request.method} {request.url.path}: {CODES[code][1].lower()}"
    return AuthError(code, detail, headers=headers).response()
