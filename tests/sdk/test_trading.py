"""``TradingClient`` against the real trading API (real PostgreSQL, the service and paper
venue, the guarded server): typed answers with exact decimals; refusals as ``SdkError`` with
the service's code and field; a place whose answer was lost is sent again with the same client
order id and places one order; a 503 is retried; a deposit or an amend is never sent twice;
answers are bounded."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest

from core.secrets import Secret
from core.trading_events import Liquidity, OrderSide, OrderStatus, OrderType, TimeInForce
from sdk import AccessToken, SdkError, TradingClient
from sdk.errors import TRADING_UNAVAILABLE
from sdk.protocol import Backoff
from sdk.trading import MAX_ANSWER_BYTES
from tests.support import tokens
from tests.trading.http.test_api import ALICE, BOB, Desk
from tests.trading.service.scenario import XBT

D = Decimal
NO_WAIT = Backoff(base=0.0, cap=0.0)


@dataclass
class Tokens:
    """A token source as ``Credentials`` is one: the account's trading token."""

    account: int
    asked: int = 0

    async def access_token(self) -> AccessToken:
        self.asked += 1
        value = tokens.issue(account_id=self.account, principal=self.account)
        now = time.time()
        return AccessToken(Secret(value), now + 300, now + 240, "pro")


@dataclass
class Lossy(httpx.AsyncBaseTransport):
    """The real transport, but the answers to the first ``lose`` requests matching
    ``method`` and ``path`` are lost after the server took them (a reset on the way back),
    and the first ``unavailable`` ones are answered 503 without reaching the server."""

    method: str
    path: str
    lose: int = 0
    unavailable: int = 0
    sent: list[str] = field(default_factory=list)
    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        matches = request.method == self.method and request.url.path.startswith(self.path)
        if matches:
            self.sent.append(request.content.decode())
        if matches and self.unavailable:
            self.unavailable -= 1
            return httpx.Response(503, json={"type": "x/store-unavailable", "code": "store"})
        answer = await self.inner.handle_async_request(request)
        if matches and self.lose:
            self.lose -= 1
            await answer.aread()
            await answer.aclose()
            raise httpx.ReadError("connection reset by peer", request=request)
        return answer

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def alice(desk: Desk) -> AsyncIterator[TradingClient]:
    async with TradingClient(desk.url, Tokens(ALICE), backoff=NO_WAIT) as client:
        yield client


def lossy_client(desk: Desk, transport: Lossy) -> TradingClient:
    http = httpx.AsyncClient(transport=transport, timeout=10)
    desk.clients.append(http)
    return TradingClient(desk.url, Tokens(ALICE), http=http, backoff=NO_WAIT)


async def test_orders_are_typed_with_exact_decimals(desk: Desk, alice: TradingClient) -> None:
    order = await alice.place(
        XBT, "buy", "0.1", type="limit", price=D("49000.5"), client_order_id="sdk-a-1"
    )
    assert (order.status, order.side, order.type, order.time_in_force) == (
        OrderStatus.ACCEPTED, OrderSide.BUY, OrderType.LIMIT, TimeInForce.GTC
    )  # fmt: skip
    assert (order.client_order_id, order.quantity, order.price) == (
        "sdk-a-1",
        D("0.1"),
        D("49000.5"),
    )
    assert order.account == ALICE
    amended = await alice.amend(order.order_id, price="49100")
    assert amended.price == D("49100")
    assert (await alice.order(order.order_id)).price == D("49100")
    desk.projector.catch_up()
    listed = await alice.orders(open_only=True)
    assert [(o.order_id, o.seq, o.average_fill_price) for o in listed] == [
        (order.order_id, 1, None)
    ]
    canceled = await alice.cancel(order.order_id)
    assert canceled.status is OrderStatus.CANCELED
    ioc = await alice.place(XBT, OrderSide.BUY, 1, type="limit", price=49000, time_in_force="ioc")
    assert ioc.client_order_id.startswith("sdk-")  # made up by the SDK
    stop = await alice.place(XBT, "buy", "0.1", type="stop-market", stop_price="51000")
    assert (stop.type, stop.stop_price) == (OrderType.STOP_MARKET, D(51000))
    with pytest.raises(TypeError):
        await alice.place(XBT, "buy", 0.1)  # type: ignore[arg-type]  # a float is never sent


async def test_fills_positions_and_balances_add_up(desk: Desk, alice: TradingClient) -> None:
    balances = await alice.deposit("USDT", "1000.5")
    assert [(b.currency, b.cash, b.available) for b in balances] == [
        ("USDT", D("101000.5"), D("101000.5"))
    ]
    await alice.place(XBT, "buy", "0.3", type="limit", price="49900")
    await alice.place(XBT, "buy", "0.2")  # a market order
    await desk.ticks(("50010", "0.1"), ("49950", "0.5"), ("49800", "0.15"))
    await alice.place(XBT, "sell", "0.05")
    await desk.ticks(("49700", "1"))
    fills = await alice.fills(limit=1000)
    assert len(fills) >= 3
    assert [fill.seq for fill in fills] == list(range(1, len(fills) + 1))
    assert all(fill.liquidity in (Liquidity.MAKER, Liquidity.TAKER) for fill in fills)
    total = sum((fill.signed_quantity for fill in fills), D(0))
    assert total == D("0.45")
    positions = await alice.positions()
    assert [(p.instrument, p.quantity, p.last_price) for p in positions] == [(XBT, total, D(49700))]
    assert positions[0].unrealised is not None
    page = await alice.fills(after=fills[0].seq or 0, limit=1)
    assert page == fills[1:2]
    held = {b.currency: b for b in await alice.balances()}
    assert held["XBT"].cash == total
    fees = sum((fill.fee for fill in fills if fill.fee_currency == "USDT"), D(0))
    assert held["USDT"].fees == fees


async def test_refusals_carry_the_services_code_and_field(alice: TradingClient) -> None:
    with pytest.raises(SdkError) as denied:
        await alice.place(XBT, "buy", "3", type="limit", price="49000")
    assert (denied.value.code, denied.value.field, denied.value.status) == (
        "buying-power", "quantity", 422
    )  # fmt: skip
    assert denied.value.kind == "order-denied"
    with pytest.raises(SdkError) as invalid:
        await alice.place(XBT, "buy", "0", type="limit", price="49000")
    assert (invalid.value.code, invalid.value.field) == ("not-positive", "quantity")
    with pytest.raises(SdkError) as unknown:
        await alice.cancel("nope")
    assert (unknown.value.code, unknown.value.status) == ("unknown-order", 404)
    with pytest.raises(SdkError) as deposit:
        await alice.deposit("USD", "0.000000001")
    assert (deposit.value.code, deposit.value.field) == ("too-precise", "amount")
    assert "field amount" in str(deposit.value)


async def test_a_read_only_token_is_refused_with_our_code(desk: Desk) -> None:
    @dataclass
    class ReadOnly:
        async def access_token(self) -> AccessToken:
            value = tokens.key_token(account_id=BOB, scopes=("read",))
            return AccessToken(Secret(value), time.time() + 300, time.time() + 240, "pro")

    async with TradingClient(desk.url, ReadOnly()) as bob:
        with pytest.raises(SdkError) as refused:
            await bob.positions()
    assert (refused.value.code, refused.value.status) == ("insufficient-scope", 403)


async def test_a_place_whose_answer_was_lost_is_sent_again_and_places_one_order(
    desk: Desk,
) -> None:
    transport = Lossy("POST", "/trading/v1/orders", lose=2)
    client = lossy_client(desk, transport)
    order = await client.place(XBT, "buy", "0.1", type="limit", price="49000")
    assert client.retries == 2
    assert len(transport.sent) == 3
    assert len(set(transport.sent)) == 1  # the same body, the same client order id, each time
    assert order.status is OrderStatus.ACCEPTED
    desk.projector.catch_up()
    assert [o.order_id for o in await client.orders()] == [order.order_id]


async def test_a_503_is_retried_and_a_lasting_outage_is_trading_unavailable(desk: Desk) -> None:
    transport = Lossy("GET", "/trading/v1/balances", unavailable=2)
    client = lossy_client(desk, transport)
    assert [b.currency for b in await client.balances()] == ["USDT"]
    assert client.retries == 2
    cut = Lossy("GET", "/trading/v1/positions", lose=10)
    failing = lossy_client(desk, cut)
    with pytest.raises(SdkError) as unavailable:
        await failing.positions()
    assert unavailable.value.code == TRADING_UNAVAILABLE
    assert len(cut.sent) == 4  # the client's attempts, then it gives up


async def test_a_deposit_and_an_amend_are_never_sent_twice(desk: Desk) -> None:
    transport = Lossy("POST", "/trading/v1/deposits", lose=1)
    client = lossy_client(desk, transport)
    with pytest.raises(SdkError) as lost:
        await client.deposit("USDT", "5")
    assert lost.value.code == TRADING_UNAVAILABLE
    assert len(transport.sent) == 1
    desk.projector.catch_up()
    held = {b.currency: b.cash for b in await client.balances()}
    assert held["USDT"] == D("100005")  # taken once: the bot looks rather than send it again
    order = await client.place(XBT, "buy", "0.1", type="limit", price="49000")
    amending = Lossy("PATCH", "/trading/v1/orders", unavailable=1)
    with pytest.raises(SdkError) as refused:
        await lossy_client(desk, amending).amend(order.order_id, price="48000")
    assert (refused.value.code, refused.value.status) == ("store", 503)
    assert len(amending.sent) == 1


async def test_a_cancel_whose_answer_was_lost_gives_the_canceled_order(desk: Desk) -> None:
    transport = Lossy("DELETE", "/trading/v1/orders", lose=1)
    client = lossy_client(desk, transport)
    order = await client.place(XBT, "buy", "0.1", type="limit", price="49000")
    canceled = await client.cancel(order.order_id)
    assert (canceled.order_id, canceled.status) == (order.order_id, OrderStatus.CANCELED)
    assert len(transport.sent) == 2


async def test_an_answer_above_the_bound_is_refused() -> None:
    huge = b'{"balances": [' + b" " * MAX_ANSWER_BYTES + b"]}"
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=huge))
    )
    async with http, TradingClient("http://trading.test", Tokens(ALICE), http=http) as client:
        with pytest.raises(SdkError) as too_large:
            await client.balances()
        assert too_large.value.code == TRADING_UNAVAILABLE
        assert "answer above" in too_large.value.message
    garbled = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=b"{"))
    )
    async with garbled, TradingClient("http://trading.test", Tokens(ALICE), http=garbled) as client:
        with pytest.raises(SdkError) as malformed:
            await client.balances()
        assert malformed.value.code == TRADING_UNAVAILABLE
