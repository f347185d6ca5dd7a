"""``TradingClient``: the trading API (``/trading/v1``, ``docs/trading.md``) for a bot, over
httpx, with tokens from :class:`~sdk.credentials.Credentials` (``docs/sdk.md``, "Trading").

Every answer is typed (:mod:`sdk.models`, exact decimals) and read up to
:data:`MAX_ANSWER_BYTES`; every refusal is :class:`~sdk.errors.SdkError` with the service's
code (``buying-power``, ``not-positive``...) and the field it names. Only calls that are safe
to send twice are sent again after a connection error or a 503: the reads, a cancel, and a
place (its ``client_order_id`` makes the second send find the first order rather than place
another; the SDK makes one up when the bot gives none, before the first send). An amend and a
deposit are sent once: a connection error is ``trading_unavailable`` and the bot looks.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, TypeVar

import httpx
import msgspec

from core.trading_events import OrderSide, OrderStatus, OrderType, TimeInForce
from sdk.closing import OwnsHttp
from sdk.credentials import TokenSource
from sdk.errors import TRADING_UNAVAILABLE, SdkError
from sdk.models import (
    Balance,
    BalanceItem,
    Fill,
    FillItem,
    Order,
    OrderItem,
    Position,
    PositionItem,
    balance_of,
    fill_of,
    order_of,
    position_of,
)
from sdk.protocol import Backoff

PREFIX: Final = "/trading/v1"
MAX_ANSWER_BYTES: Final = 4 * 1024 * 1024
"""The largest answer read (a page of 1,000 orders is well under 1 MiB)."""
RETRY_STATUSES: Final = frozenset({502, 503, 504})
"""Answers after which a call that is safe to repeat is sent again."""
NOT_OPEN: Final = "not-open"

T = TypeVar("T")


class _OrderAnswer(msgspec.Struct, frozen=True):
    order: Order


class _OrdersPage(msgspec.Struct, frozen=True):
    orders: list[OrderItem]
    next_after: int | None = None


class _FillsPage(msgspec.Struct, frozen=True):
    fills: list[FillItem]
    next_after: int | None = None


class _Positions(msgspec.Struct, frozen=True):
    positions: list[PositionItem]


class _Balances(msgspec.Struct, frozen=True):
    balances: list[BalanceItem]


class _Problem(msgspec.Struct, frozen=True):
    type: str = ""
    detail: str = ""
    code: str | None = None
    reason: str | None = None
    parameter: str | None = None


_PROBLEM: Final = msgspec.json.Decoder(_Problem)


def new_client_order_id() -> str:
    """A fresh client order id (``sdk-`` and 24 hex digits: within the service's pattern)."""
    return f"sdk-{uuid.uuid4().hex[:24]}"


def _text(amount: Decimal | int | str) -> str:
    """An amount as the exact decimal string the API reads (never a float)."""
    if isinstance(amount, float):
        raise TypeError("amounts are Decimal, int or str, never float (they must be exact)")
    return str(amount)


class TradingClient(OwnsHttp):
    """The account's trading API at ``base_url`` (the edge: ``http://127.0.0.1:8000``).

    ``credentials`` gives the bearer tokens (their plan must trade, their key the ``trade``
    scope). A call that is safe to repeat is tried up to ``attempts`` times, waiting
    ``backoff`` (full jitter) between; ``timeout`` bounds each request. ``http`` (optional)
    stays the caller's to close; without it one is made and closed by :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        credentials: TokenSource,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: Backoff | None = None,
        new_id: Callable[[], str] = new_client_order_id,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts is 1 or more")
        self._base = base_url.rstrip("/") + PREFIX
        self._credentials = credentials
        super().__init__(http, timeout)
        self._attempts = attempts
        self._backoff = backoff or Backoff(base=0.2, cap=5.0)
        self._new_id = new_id
        self.retries = 0
        """Requests sent again (after a connection error or a 503)."""

    # -- orders -------------------------------------------------------------------------------

    async def place(
        self,
        instrument: str,
        side: OrderSide | str,
        quantity: Decimal | int | str,
        *,
        type: OrderType | str = OrderType.MARKET,
        price: Decimal | int | str | None = None,
        stop_price: Decimal | int | str | None = None,
        time_in_force: TimeInForce | str | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """Place an order (``market``, ``limit`` with a ``price``, ``stop-market`` with a
        ``stop_price``): the order as stored (``accepted``, or ``rejected`` by the venue). A
        denial raises :class:`SdkError` with the risk check's code and field. Sent again after
        a connection error or a 503 with the same ``client_order_id``, so at most one order
        is placed."""
        body: dict[str, Any] = {
            "client_order_id": client_order_id or self._new_id(),
            "instrument": instrument,
            "side": str(side),
            "type": str(type),
            "quantity": _text(quantity),
        }
        if price is not None:
            body["price"] = _text(price)
        if stop_price is not None:
            body["stop_price"] = _text(stop_price)
        if time_in_force is not None:
            body["time_in_force"] = str(time_in_force)
        answer = await self._call("POST", "/orders", _OrderAnswer, body=body, repeat=True)
        return answer.order

    async def cancel(self, order_id: str) -> Order:
        """Cancel an open order: the order, canceled. Sent again after a connection error;
        a ``not-open`` refusal of that second send, for an order that the first send
        canceled, gives the canceled order."""
        try:
            answer = await self._call("DELETE", f"/orders/{order_id}", _OrderAnswer, repeat=True)
        except SdkError as error:
            if error.code == NOT_OPEN and error.repeated:
                order = await self.order(order_id)
                if order.status is OrderStatus.CANCELED:
                    return order
            raise
        return answer.order

    async def amend(
        self,
        order_id: str,
        *,
        quantity: Decimal | int | str | None = None,
        price: Decimal | int | str | None = None,
        stop_price: Decimal | int | str | None = None,
    ) -> Order:
        """Change an open order's ``quantity``, ``price`` or ``stop_price`` (sent once)."""
        changes = (("quantity", quantity), ("price", price), ("stop_price", stop_price))
        body = {name: _text(value) for name, value in changes if value is not None}
        answer = await self._call("PATCH", f"/orders/{order_id}", _OrderAnswer, body=body)
        return answer.order

    async def order(self, order_id: str) -> Order:
        """One order, as the service holds it (current, not the read models')."""
        return (await self._call("GET", f"/orders/{order_id}", _OrderAnswer, repeat=True)).order

    async def orders(
        self, *, open_only: bool = False, limit: int = 100, after: int = 0
    ) -> list[Order]:
        """A page of the account's orders numbered after ``after``, oldest first (each
        with its ``seq``: the next page is ``after=orders[-1].seq``)."""
        params = {"limit": str(limit), "after": str(after), "open": str(open_only).lower()}
        page = await self._call("GET", "/orders", _OrdersPage, params=params, repeat=True)
        return [order_of(item) for item in page.orders]

    # -- the account --------------------------------------------------------------------------

    async def fills(self, *, limit: int = 100, after: int = 0) -> list[Fill]:
        """A page of the account's fills numbered after ``after``, oldest first."""
        params = {"limit": str(limit), "after": str(after)}
        page = await self._call("GET", "/fills", _FillsPage, params=params, repeat=True)
        return [fill_of(item) for item in page.fills]

    async def positions(self) -> list[Position]:
        """Every position, marked to the last trade the venue saw."""
        answer = await self._call("GET", "/positions", _Positions, repeat=True)
        return [position_of(item) for item in answer.positions]

    async def balances(self) -> list[Balance]:
        answer = await self._call("GET", "/balances", _Balances, repeat=True)
        return [balance_of(item) for item in answer.balances]

    async def deposit(self, currency: str, amount: Decimal | int | str) -> list[Balance]:
        """Paper money into the account, where the service allows it (``mdp up`` does): the
        balances after it. Sent once (a second send would deposit twice)."""
        body = {"currency": currency, "amount": _text(amount)}
        answer = await self._call("POST", "/deposits", _Balances, body=body)
        return [balance_of(item) for item in answer.balances]

    # -- the calls ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        answer: type[T],
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        repeat: bool = False,
    ) -> T:
        """``method path``, its answer decoded as ``answer``; repeated (when ``repeat``)
        after a connection error or a 502/503/504, up to the client's attempts."""
        content = None if body is None else msgspec.json.encode(body)
        attempts = self._attempts if repeat else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            if attempt:
                self.retries += 1
                await asyncio.sleep(self._backoff.delay(attempt - 1))
            token = await self._credentials.access_token()
            headers = {"Authorization": f"Bearer {token.value.reveal()}"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            try:
                status, data = await self._send(method, path, headers, content, params)
            except httpx.TransportError as exc:
                if last:
                    raise SdkError(
                        TRADING_UNAVAILABLE, f"{method} {path}: {type(exc).__name__}"
                    ) from None
                continue
            if status in RETRY_STATUSES and not last:
                continue
            if status >= 400:
                raise self._refusal(method, path, status, data, repeated=attempt > 0)
            try:
                return msgspec.json.decode(data, type=answer)
            except msgspec.DecodeError as exc:
                raise SdkError(
                    TRADING_UNAVAILABLE, f"{method} {path}: not the API's answer ({exc})"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        content: bytes | None,
        params: dict[str, str] | None,
    ) -> tuple[int, bytes]:
        request = self._http.build_request(
            method, self._base + path, headers=headers, content=content, params=params
        )
        response = await self._http.send(request, stream=True)
        try:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    too_large = f"{method} {path}: answer above {MAX_ANSWER_BYTES} bytes"
                    raise SdkError(TRADING_UNAVAILABLE, too_large)
                chunks.append(chunk)
        finally:
            await response.aclose()
        return response.status_code, b"".join(chunks)

    def _refusal(
        self, method: str, path: str, status: int, data: bytes, *, repeated: bool
    ) -> SdkError:
        try:
            problem = _PROBLEM.decode(data)
        except msgspec.DecodeError:
            code = TRADING_UNAVAILABLE if status >= 500 else f"http-{status}"
            return SdkError(code, f"{method} {path}: HTTP {status}", status=status)
        kind = problem.type.rsplit("/", 1)[-1]
        code = problem.code or problem.reason or kind or f"http-{status}"
        error = SdkError(
            code, problem.detail or f"HTTP {status}", field=problem.parameter, status=status
        )
        error.kind = kind
        error.repeated = repeated
        return error
