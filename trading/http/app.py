"""The trading API: ``/trading/v1`` over a running service, its read models and its event
store (``docs/trading.md``, "HTTP interface").

Every ``/trading/v1`` route but the OpenAPI document needs a token the auth service issued,
verified here (:class:`web.tokens.TokenGate`, never anonymous) whose ``trade`` claim is true
(its plan allows trading and its scopes include ``trade``): 401 without a valid one, 403 with
one that may not trade. The account is the token's, and every command and query names it, so
an account never sees another's orders. A service that owns one partition of the accounts
answers the others 421 ``wrong-partition``, naming the partition that owns them. A place, an
amend, a cancel and one order are the service's (what it answers is durable); the lists are
the read models', a little behind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from access.grant import Grant
from access.settings import TokenSettings
from core.trading_events import OrderStatus, TradingEvent
from streams.bus import Bus
from telemetry.metrics import ORDER_ACK
from trading.domain.accounts import Account
from trading.domain.orders import IllegalTransition, OrderInvalid
from trading.domain.risk import RiskRefused
from trading.http.body import amend_request, deposit_request, place_request
from trading.http.errors import denied, problem, wrong_partition
from trading.http.openapi import document
from trading.readmodels.projection import Balance
from trading.readmodels.queries import (
    DEFAULT_LIMIT,
    MAX_ID,
    BalanceView,
    QueryError,
    TradingQueries,
)
from trading.service.book import aggregate_id
from trading.service.saga import ServiceError
from trading.service.shell import RESTART_REQUIRED, TradingService
from trading.store.errors import StoreError
from trading.store.events import EventStore
from web import health
from web.guard import HttpLimits
from web.problems import ProblemError
from web.routes import Guard, json_response, read_body, service_routes
from web.tokens import TokenGate, service_app, unauthorized

PREFIX: Final = "/trading/v1"
_REFUSALS: Final = (
    OrderInvalid, RiskRefused, IllegalTransition, ServiceError, QueryError, StoreError
)  # fmt: skip


class _Api:
    def __init__(
        self,
        service: TradingService,
        queries: TradingQueries,
        events: EventStore[TradingEvent],
        gate: TokenGate,
        max_body_bytes: int,
        deposits: bool,
        failure: Callable[[], str | None],
    ) -> None:
        self.service, self.queries, self.events = service, queries, events
        self.failure = failure
        self.gate = gate
        self.max_body_bytes = max_body_bytes
        self.deposits = deposits

    async def account(self, request: Request) -> int:
        """The token's account, where it may trade and this instance serves it."""
        account = _account(await self.gate.grant(request))
        if not self.service.partition.owns(account):
            raise wrong_partition(account, self.service.partition)
        return account

    async def body(self, request: Request) -> bytes:
        return await read_body(request, self.max_body_bytes)

    # -- orders -------------------------------------------------------------------------------

    async def place(self, request: Request, account: int) -> Response:
        placing = place_request(account, await self.body(request))
        started = time.perf_counter()
        order, new = await self.service.place(placing)
        ORDER_ACK.labels(_ack_outcome(order.status, new)).observe(time.perf_counter() - started)
        if order.status is OrderStatus.DENIED:
            reason = order.reason or "the risk check denied it"
            raise denied(order.reason_code or "denied", order.reason_field, reason, order)
        return json_response({"order": order}, 201 if new else 200)

    async def order(self, request: Request, account: int) -> Response:
        order = await self.service.order(account, _order_id(request))
        return json_response({"order": order})

    async def cancel(self, request: Request, account: int) -> Response:
        return json_response({"order": await self.service.cancel(account, _order_id(request))})

    async def amend(self, request: Request, account: int) -> Response:
        change = amend_request(account, _order_id(request), await self.body(request))
        return json_response({"order": await self.service.amend(change)})

    async def orders(self, request: Request, account: int) -> Response:
        limit, after = _page(request)
        open_only = _flag(request, "open")
        views = await self.queries.orders(account, open_only=open_only, limit=limit, after=after)
        return json_response({"orders": views, "next_after": views[-1].seq if views else None})

    # -- the account --------------------------------------------------------------------------

    async def fills(self, request: Request, account: int) -> Response:
        limit, after = _page(request)
        views = await self.queries.fills(account, limit=limit, after=after)
        return json_response({"fills": views, "next_after": views[-1].seq if views else None})

    async def positions(self, request: Request, account: int) -> Response:
        views = await self.queries.positions(account, self.service.last_prices())
        return json_response({"positions": views})

    async def balances(self, request: Request, account: int) -> Response:
        return json_response({"balances": await self.queries.balances(account)})

    async def deposit(self, request: Request, account: int) -> Response:
        """Paper money into the account (only where the settings allow it): 201 with the
        account's balances as stored (the service's, not the read models', which follow)."""
        if not self.deposits:
            raise ProblemError(
                403, "deposits-not-allowed", "Forbidden",
                "this trading service takes no paper deposits (its settings do not allow them)",
                extra={"code": "deposits-off"},
            )  # fmt: skip
        deposit = deposit_request(await self.body(request))
        stored = await self.service.deposit(account, deposit.currency, deposit.amount)
        return json_response({"balances": balances_of(stored)}, 201)

    async def audit(self, request: Request, account: int) -> Response:
        limit, after = _page(request)
        items = await asyncio.to_thread(self.events.read, aggregate_id(account), after, limit=limit)
        events = [{"version": item.version, "event": item.event} for item in items]
        return json_response({"events": events, "next_after": items[-1].version if items else None})

    # -- health -------------------------------------------------------------------------------

    def service_check(self) -> str | None:
        """``restart-required`` when the service refuses everything until a restart, else
        the process's failure (``consumer-stopped``: a consumer task ended), else ``None``."""
        return RESTART_REQUIRED if self.service.unsound is not None else self.failure()

    async def ready(self, request: Request) -> Response:
        """Ready when the read models' database answers and the service and every consumer
        of the process run."""
        try:
            await self.queries.ping()
        except StoreError as exc:
            database: str | None = exc.code
        else:
            database = None
        return health.ready({"database": database, "service": self.service_check()})

    async def alive(self, request: Request) -> Response:
        """Alive unless the process cannot serve until a restart (``service``)."""
        failing = self.service_check()
        if failing is None:
            return await health.alive(request)
        return health.failed({"service": failing})


def balances_of(account: Account) -> list[BalanceView]:
    """The account's balances in the shape ``GET /balances`` answers, by currency."""
    currencies = sorted({*account.cash, *account.reserved, *account.fees})
    return [
        BalanceView(
            balance=Balance(
                currency=currency,
                cash=account.balance(currency),
                reserved=account.reserved.get(currency, Decimal(0)),
                fees=account.fees.get(currency, Decimal(0)),
            ),
            available=account.available(currency),
        )
        for currency in currencies
    ]


def _account(grant: Grant) -> int:
    if grant.account_id is None:
        raise unauthorized("token-required", "trading needs a token of an account or its key")
    if not (grant.trading and "trade" in grant.scopes):
        raise ProblemError(
            403, "trade-not-allowed", "Forbidden",
            "this token may not trade: its plan or its key lacks the trade scope",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="trade"'},
            extra={"code": "insufficient-scope"},
        )  # fmt: skip
    return grant.account_id


def _ack_outcome(status: OrderStatus, new: bool) -> str:
    """The order-ack metric's outcome: ``accepted``, ``denied`` (by the risk check), or
    ``repeated`` (an idempotent repeat answered from the stored order)."""
    if not new:
        return "repeated"
    return "denied" if status is OrderStatus.DENIED else "accepted"


def _order_id(request: Request) -> str:
    return str(request.path_params["order_id"])


def _page(request: Request) -> tuple[int, int]:
    return _int(request, "limit", DEFAULT_LIMIT), _int(request, "after", 0)


def _int(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit() or len(text) > len(str(MAX_ID)):
        raise QueryError(f"bad-{name}", f"{name} must be a whole number")
    return int(text)


def _flag(request: Request, name: str) -> bool:
    text = request.query_params.get(name, "false")
    if text not in ("true", "false"):
        raise QueryError(f"bad-{name}", f"{name} is true or false")
    return text == "true"


def create_app(
    service: TradingService,
    queries: TradingQueries,
    events: EventStore[TradingEvent],
    tokens: TokenSettings,
    *,
    bus: Bus | None = None,
    limits: HttpLimits | None = None,
    deposits: bool = False,
    failure: Callable[[], str | None] = lambda: None,
) -> Starlette:
    """The app over a running ``service``, its read models' ``queries`` and ``events`` (the
    caller owns them). ``tokens`` says how tokens are checked (``jwks_url`` or ``keys``,
    ``issuer``, ``audience``): one of the key sets is required, and no anonymous plan. Given
    a ``bus``, revocations and plan changes on ``auth.events`` apply at once. ``deposits``
    allows paper money (``POST /deposits``); off, the route is 403 ``deposits-off``.
    ``failure`` says why the process running the service cannot serve (its code), if it
    cannot: ``/readyz``'s ``service`` check and ``/healthz`` answer 503 then."""
    if tokens.keys is None and tokens.jwks_url is None:
        raise ValueError("the trading API checks tokens: give it jwks_url or keys")
    if tokens.anonymous is not None:
        raise ValueError("the trading API has no anonymous plan")
    gate = TokenGate(tokens, "trading")
    max_body_bytes = (limits or HttpLimits()).max_body_bytes
    api = _Api(service, queries, events, gate, max_body_bytes, deposits, failure)
    g = Guard(api.account, _REFUSALS, problem)
    routes = [
        Route(f"{PREFIX}/orders", g(api.place), methods=["POST"]),
        Route(f"{PREFIX}/orders", g(api.orders), methods=["GET"]),
        Route(f"{PREFIX}/orders/{{order_id}}", g(api.order), methods=["GET"]),
        Route(f"{PREFIX}/orders/{{order_id}}", g(api.cancel), methods=["DELETE"]),
        Route(f"{PREFIX}/orders/{{order_id}}", g(api.amend), methods=["PATCH"]),
        Route(f"{PREFIX}/positions", g(api.positions), methods=["GET"]),
        Route(f"{PREFIX}/balances", g(api.balances), methods=["GET"]),
        Route(f"{PREFIX}/deposits", g(api.deposit), methods=["POST"]),
        Route(f"{PREFIX}/fills", g(api.fills), methods=["GET"]),
        Route(f"{PREFIX}/events", g(api.audit), methods=["GET"]),
        *service_routes(PREFIX, document(), api.ready, api.alive),
    ]

    return service_app(routes, gate, bus)


__all__ = ["PREFIX", "create_app"]
