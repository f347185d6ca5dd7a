"""The main API's refusals and their answers as problem details (``application/problem+json``,
:class:`web.problems.ProblemError`): our code in ``code`` and, where one field is at fault,
that field in ``parameter`` and ``invalid_params``."""

from __future__ import annotations

from main_api.requests import InvalidFieldError
from web.problems import RETRY_AFTER_S, ProblemError


class BadParameterError(InvalidFieldError):
    """400: a query parameter is malformed (as the history and trading APIs answer it)."""


class NotFoundError(LookupError):
    """The account has no such thing (another account's is not its: the same answer)."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


class RefusedError(Exception):
    """403: the plan does not allow it (``plan-limit``, ``instrument-not-in-plan``)."""

    def __init__(self, code: str, field: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.code, self.field, self.message, self.extra = code, field, message, extra


class ConflictError(Exception):
    """409: the request does not fit the state (a reorder that does not list every
    watchlist)."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


class StoreUnavailableError(Exception):
    """The database cannot be reached now (the next request after it is back succeeds)."""


REFUSALS = (InvalidFieldError, NotFoundError, RefusedError, ConflictError, StoreUnavailableError)


def problem(exc: Exception) -> ProblemError:
    """The answer to one of :data:`REFUSALS`."""
    if isinstance(exc, BadParameterError):
        return _made(400, "invalid-parameter", "Invalid parameter", exc.message, exc.code,
                     exc.field)  # fmt: skip
    if isinstance(exc, InvalidFieldError):
        return _made(422, "invalid-request", "Invalid request", exc.message, exc.code, exc.field)
    if isinstance(exc, NotFoundError):
        return _made(404, "not-found", "Not found", exc.message, exc.code, exc.field)
    if isinstance(exc, RefusedError):
        made = _made(403, "not-allowed", "Not allowed by the plan", exc.message, exc.code,
                     exc.field)  # fmt: skip
        made.extra.update(exc.extra)
        return made
    if isinstance(exc, ConflictError):
        return _made(409, "conflict", "ConflictError", exc.message, exc.code, exc.field)
    if isinstance(exc, StoreUnavailableError):
        return ProblemError(
            503, "store-unavailable", "Store unavailable",
            f"the main API's database is unavailable; try again in {RETRY_AFTER_S}s",
            headers={"Retry-After": str(RETRY_AFTER_S)}, extra={"code": "store-unavailable"},
        )  # fmt: skip
    raise exc


def _made(
    status: int, kind: str, title: str, detail: str, code: str, field: str | None
) -> ProblemError:
    return ProblemError(status, kind, title, detail, field, extra={"code": code})
