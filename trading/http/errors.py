"""The trading API's errors as problem details (``application/problem+json``, as the history
API's: :class:`web.problems.ProblemError`), each with our code in ``code`` and, where one
field is at fault, that field in ``parameter`` and ``invalid_params``."""

from __future__ import annotations

from typing import Any, Final

from core.partitions import Partition
from trading.domain.orders import IllegalTransition, OrderInvalid
from trading.domain.risk import RiskRefused
from trading.http.body import DepositInvalid
from trading.readmodels.queries import QueryError
from trading.service.saga import ServiceError
from trading.store.errors import StoreError
from web.problems import RETRY_AFTER_S, ProblemError

_SERVICE_STATUS: Final = {
    "client-order-id-reused": 409,
    "unknown-order": 404,
    "restart-required": 503,
    "wrong-partition": 421,
}
_NOT_OPEN: Final = frozenset({"not-open", "below-filled"})


def problem(exc: Exception) -> ProblemError:
    """The answer to a refusal of the domain, the service, the queries or the store."""
    if isinstance(exc, DepositInvalid):
        return _problem(422, "deposit-invalid", "Invalid deposit", exc.message, exc.code, exc.field)
    if isinstance(exc, OrderInvalid):
        status = 409 if exc.code in _NOT_OPEN else 422
        title = "Order not open" if status == 409 else "Invalid order"
        return _problem(status, "order-invalid", title, exc.message, exc.code, exc.field)
    if isinstance(exc, RiskRefused):  # an amend the account cannot hold: nothing stored
        return _problem(422, "order-denied", "Order denied", exc.message, exc.code, exc.field)
    if isinstance(exc, IllegalTransition):
        return _problem(409, "order-invalid", "Order not open", str(exc), exc.code)
    if isinstance(exc, ServiceError):
        status = _SERVICE_STATUS.get(exc.code, 409)
        return _problem(
            status, "order-refused", "Order refused", exc.message, exc.code, retry=status == 503
        )
    if isinstance(exc, QueryError):
        field = exc.code.removeprefix("bad-").replace("cursor", "after")
        return _problem(400, "invalid-parameter", "Invalid parameter", str(exc), exc.code, field)
    if isinstance(exc, StoreError):
        return _problem(
            503,
            "store-unavailable",
            "Store unavailable",
            "the trading store is unavailable; try again",
            exc.code,
            retry=True,
        )
    raise exc


def wrong_partition(account: int, served: Partition) -> ProblemError:
    """421: this instance does not serve ``account`` (another partition owns it; the edge
    routes each account to its owner, so only a request sent past it gets this)."""
    owner = served.owner(account)
    return ProblemError(
        421, "wrong-partition", "Misdirected request",
        f"account {account} is served by partition {owner}, this instance serves {served}",
        extra={"code": "wrong-partition", "partition": str(owner), "served": str(served)},
    )  # fmt: skip


def denied(code: str, field: str | None, message: str, order: Any) -> ProblemError:
    """422: the pre-trade risk check denied the order (stored: ``order`` is it, denied)."""
    made = _problem(422, "order-denied", "Order denied", message, code, field)
    made.extra["order"] = order
    return made


def _problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    code: str,
    field: str | None = None,
    *,
    retry: bool = False,
) -> ProblemError:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if retry else None
    return ProblemError(status, kind, title, detail, field, headers=headers, extra={"code": code})
