"""Errors as RFC 9457 problem details (``application/problem+json``), naming the parameter.

Routes raise :class:`ProblemError`; the app turns it into a response. The body carries the
standard members (``type``, ``title``, ``status``, ``detail``) and two of ours: ``parameter``,
the query parameter at fault (when one is), and ``invalid_params``. The UDF routes add
TradingView's ``s: "error"`` and ``errmsg`` so that a UDF client reads the same body.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
_TYPE_BASE: Final = "https://ganntec.dev/problems/"


class ProblemError(Exception):
    """A 4xx or 5xx answer: ``kind`` is the last part of the ``type`` URI
    (``invalid-parameter``)."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        parameter: str | None = None,
        *,
        udf: bool = False,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.parameter = parameter
        self.udf = udf
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": _TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.parameter is not None:
            body["parameter"] = self.parameter
            body["invalid_params"] = [{"name": self.parameter, "reason": self.detail}]
        body.update(self.extra)
        if self.udf:
            body["s"] = "error"
            body["errmsg"] = self.detail
        return body

    def response(self) -> Response:
        return Response(
            msgspec.json.encode(self.body()),
            status_code=self.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=self.headers,
        )


def invalid(parameter: str, detail: str) -> ProblemError:
    """400: a query parameter is missing or malformed."""
    return ProblemError(400, "invalid-parameter", "Invalid parameter", detail, parameter)


def not_found(parameter: str, detail: str) -> ProblemError:
    """404: the parameter names something that does not exist (an unknown instrument)."""
    return ProblemError(404, "not-found", "Not found", detail, parameter)


def not_acceptable(detail: str) -> ProblemError:
    """406: no representation matches the ``Accept`` header."""
    return ProblemError(406, "not-acceptable", "Not acceptable", detail, "format")


RETRY_AFTER_S: Final = 5
"""What a 503 asks a client to wait before it tries again, in seconds."""


def database_unavailable() -> ProblemError:
    """503: the database cannot be reached now; ``Retry-After`` says when to try again."""
    return ProblemError(
        503,
        "database-unavailable",
        "Database unavailable",
        f"the history database is unavailable; try again in {RETRY_AFTER_S}s",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def internal_error() -> ProblemError:
    """500: the request failed in a way no other answer names (the log has the cause; the
    body says nothing of it: :mod:`web.internal_errors`)."""
    return ProblemError(
        500,
        "internal-error",
        "Internal error",
        "the server failed to answer this request; the failure is logged",
        headers={"Cache-Control": "no-store"},
        extra={"code": "internal-error"},
    )


async def unavailable_handler(request: Request, exc: Exception) -> Response:
    """The app's handler for a database that went away during a read: a 503 problem."""
    return await problem_handler(request, database_unavailable())


async def problem_handler(request: Request, exc: Exception) -> Response:
    """The app's handler for :class:`ProblemError` (see :mod:`charting.app`)."""
    assert isinstance(exc, ProblemError)
    if request.url.path.startswith("/udf"):
        exc.udf = True
    return exc.response()


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """404 for unknown paths and 405 for wrong methods, as problem details too."""
    status = int(getattr(exc, "status_code", 500))
    detail = str(getattr(exc, "detail", "")) or "error"
    headers = dict(getattr(exc, "headers", None) or {})
    kind = {404: "not-found", 405: "method-not-allowed"}.get(status, "http-error")
    return ProblemError(status, kind, detail, f"{request.method} {request.url.path}: {detail}",
                   headers=headers).response()  # fmt: skip
