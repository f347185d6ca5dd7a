"""The trading API over HTTP (real PostgreSQL, the real service and paper venue, the guarded
server): place, get, cancel; a client order id sent again; 422s naming the field with our
codes; 401 and 403; two accounts that never see each other's orders; positions equal to the
sum of the fills the ticks made; paper deposits, bounded, and refused where not allowed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from access.settings import TokenSettings
from core.ticks import Side, Tick
from core.trading_events import TradingEvent
from tests.support import tokens
from tests.trading.service.scenario import XBT, settings
from trading.http import create_app
from trading.paper.matcher import PaperMatcher
from trading.readmodels.queries import TradingQueries
from trading.readmodels.tables import model
from trading.service.shell import TradingService
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.projector import Projector
from trading.store.wire import EVENT_CODEC
from web.server import serving

D = Decimal
ALICE, BOB = 1, 2
ORDERS = "/trading/v1/orders"


class Desk:
    """The running service, its read models and the API's base URL."""

    def __init__(self, service: TradingService, projector: Projector[TradingEvent], url: str):
        self.service, self.projector = service, projector
        self.trade_id = 0
        self.clients: list[httpx.AsyncClient] = []
        self.url = url

    def client(self, token: str | None) -> httpx.AsyncClient:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        made = httpx.AsyncClient(base_url=self.url, headers=headers)
        self.clients.append(made)
        return made

    async def ticks(self, *trades: tuple[str, str]) -> None:
        """Trades of XBT at (price, size), then the read models caught up."""
        batch = []
        for price, size in trades:
            self.trade_id += 1
            now = time.time_ns()
            batch.append(Tick(XBT, self.trade_id, D(price), D(size), Side.SELL, now, now))
        await self.service.on_ticks(batch)
        self.projector.catch_up()


def trader(account: int) -> str:
    return tokens.issue(account_id=account, principal=account)


@pytest.fixture
def database(fresh_database: str) -> Iterator[Database]:
    with Database(StoreSettings(fresh_database)) as db:
        db.create_tables()
        yield db


@pytest.fixture
async def desk(database: Database) -> AsyncIterator[Desk]:
    events: EventStore[TradingEvent] = EventStore(database, EVENT_CODEC)
    projector = Projector(database, events, model(f"{database.schema}_read"))
    projector.start()
    service = TradingService(database, PaperMatcher(settings()))
    for account in (ALICE, BOB):
        await service.deposit(account, "USDT", D(100_000))
    projector.catch_up()
    async with TradingQueries.open(database.settings.url, projector.model.schema) as queries:
        app = create_app(
            service, queries, events, TokenSettings(keys=tokens.keyset()), deposits=True
        )
        async with serving(app) as server:
            made = Desk(service, projector, server.url)
            await made.ticks(("50000", "1"))
            yield made
            for client in made.clients:
                await client.aclose()


def limit_buy(client_id: str, price: str = "49000", quantity: str = "0.1") -> dict[str, Any]:
    return {"client_order_id": client_id, "instrument": XBT, "side": "buy", "type": "limit",
            "quantity": quantity, "price": price}  # fmt: skip


def problem_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    return body


async def test_place_get_and_cancel(desk: Desk) -> None:
    alice = desk.client(trader(ALICE))
    placed = await alice.post(ORDERS, json=limit_buy("a-1"))
    assert placed.status_code == 201, placed.text
    order = placed.json()["order"]
    assert (order["status"], order["client_order_id"], order["price"]) == (
        "accepted",
        "a-1",
        "49000",
    )
    order_id = order["order_id"]
    assert (await alice.get(f"{ORDERS}/{order_id}")).json()["order"] == order
    desk.projector.catch_up()
    listed = (await alice.get(ORDERS, params={"open": "true"})).json()
    assert [view["order"]["order_id"] for view in listed["orders"]] == [order_id]
    canceled = await alice.delete(f"{ORDERS}/{order_id}")
    assert canceled.status_code == 200
    assert canceled.json()["order"]["status"] == "canceled"
    again = problem_of(await alice.delete(f"{ORDERS}/{order_id}"), 409)
    assert again["code"] == "not-open"
    missing = problem_of(await alice.get(f"{ORDERS}/nope"), 404)
    assert missing["code"] == "unknown-order"
    desk.projector.catch_up()
    assert (await alice.get(ORDERS, params={"open": "true"})).json()["orders"] == []
    audit = (await alice.get("/trading/v1/events", params={"limit": "2"})).json()
    assert [item["version"] for item in audit["events"]] == [1, 2]
    assert audit["events"][0]["event"]["kind"] == "funds-deposited"
    rest = (await alice.get("/trading/v1/events", params={"after": audit["next_after"]})).json()
    kinds = [item["event"]["kind"] for item in audit["events"] + rest["events"]]
    assert kinds[:2] == ["funds-deposited", "order-submitted"]
    assert "order-canceled" in kinds


async def test_amend_changes_the_price(desk: Desk) -> None:
    alice = desk.client(trader(ALICE))
    order_id = (await alice.post(ORDERS, json=limit_buy("a-2"))).json()["order"]["order_id"]
    amended = await alice.patch(f"{ORDERS}/{order_id}", json={"price": "49500"})
    assert amended.status_code == 200, amended.text
    assert amended.json()["order"]["price"] == "49500"
    bad = problem_of(await alice.patch(f"{ORDERS}/{order_id}", json={"price": "-1"}), 422)
    assert (bad["code"], bad["parameter"]) == ("not-positive", "price")
    too_big = await alice.patch(f"{ORDERS}/{order_id}", json={"quantity": "3"})
    assert (problem_of(too_big, 422)["code"], too_big.json()["parameter"]) == (
        "buying-power", "quantity"
    )  # fmt: skip
    assert (await alice.get(f"{ORDERS}/{order_id}")).json()["order"]["quantity"] == "0.1"


async def test_the_same_client_order_id_gives_the_same_order(desk: Desk) -> None:
    alice = desk.client(trader(ALICE))
    first = await alice.post(ORDERS, json=limit_buy("same"))
    second = await alice.post(ORDERS, json=limit_buy("same"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    desk.projector.catch_up()
    assert len((await alice.get(ORDERS)).json()["orders"]) == 1
    reused = problem_of(await alice.post(ORDERS, json=limit_buy("same", price="48000")), 409)
    assert reused["code"] == "client-order-id-reused"


async def test_of_requests_sent_at_once_with_one_client_order_id_one_creates_the_order(
    desk: Desk,
) -> None:
    alice = desk.client(trader(ALICE))
    answers = await asyncio.gather(*(alice.post(ORDERS, json=limit_buy("race")) for _ in range(4)))
    assert sorted(answer.status_code for answer in answers) == [200, 200, 200, 201]
    assert len({answer.json()["order"]["order_id"] for answer in answers}) == 1


async def test_a_denied_order_sent_again_is_denied_again_naming_the_same_field(desk: Desk) -> None:
    alice = desk.client(trader(ALICE))
    answers = [await alice.post(ORDERS, json=limit_buy("poor", quantity="3")) for _ in range(2)]
    first, again = (problem_of(answer, 422) for answer in answers)
    assert (again["code"], again["parameter"], again["detail"]) == (
        first["code"], first["parameter"], first["detail"]
    )  # fmt: skip
    assert (first["code"], first["parameter"]) == ("buying-power", "quantity")
    assert again["order"]["order_id"] == first["order"]["order_id"]
    assert again["order"]["reason_field"] == "quantity"


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"quantity": "0"}, "quantity", "not-positive"),
        ({"quantity": "abc"}, "quantity", "not-a-number"),
        ({"quantity": 0.1}, "quantity", None),  # a JSON number is read exactly: accepted
        ({"price": None}, "price", "required"),
        ({"side": "sideways"}, "side", "unknown"),
        ({"instrument": "nope"}, "instrument", "format"),
        ({"client_order_id": "has space"}, "client_order_id", "format"),
        ({"account": 2}, "account", "forbidden"),
        ({"price": "1"}, "price", "price-band"),  # the risk check's denial
        ({"quantity": "3"}, "quantity", "buying-power"),
    ],
)
async def test_a_bad_order_is_422_naming_the_field(
    desk: Desk, change: dict[str, Any], field: str, code: str | None
) -> None:
    alice = desk.client(trader(ALICE))
    answer = await alice.post(ORDERS, json=limit_buy("bad") | change)
    if code is None:
        assert answer.status_code == 201, answer.text
        return
    body = problem_of(answer, 422)
    assert (body["code"], body["parameter"]) == (code, field)
    assert body["invalid_params"][0]["name"] == field


async def test_a_body_that_is_not_an_object_or_too_large_is_refused(desk: Desk) -> None:
    alice = desk.client(trader(ALICE))
    body = problem_of(await alice.post(ORDERS, content=b"[1, 2"), 422)
    assert (body["code"], body["parameter"]) == ("format", "body")
    huge = b'{"client_order_id": "' + b"x" * 100_000 + b'"}'
    assert (await alice.post(ORDERS, content=huge)).status_code == 413


@pytest.mark.parametrize("path", [ORDERS, "/trading/v1/positions", "/trading/v1/events"])
async def test_no_token_a_refused_token_or_a_read_only_key_cannot_trade(
    desk: Desk, path: str
) -> None:
    body = problem_of(await desk.client(None).get(path), 401)
    assert body["type"].endswith("/token-required")
    for case, bad in tokens.refused_tokens().items():
        refused = problem_of(await desk.client(bad).get(path), 401)
        assert refused["reason"] == tokens.code_of(case)
    read_only = tokens.key_token(account_id=ALICE, scopes=("read",))
    forbidden = problem_of(await desk.client(read_only).get(path), 403)
    assert forbidden["code"] == "insufficient-scope"
    free_plan = tokens.issue(plan="free", account_id=ALICE)
    assert problem_of(await desk.client(free_plan).get(path), 403)["code"] == "insufficient-scope"
    posted = await desk.client(read_only).post(ORDERS, json=limit_buy("ro"))
    assert posted.status_code == 403
    assert (await desk.client(trader(ALICE)).get(path)).status_code == 200


async def test_accounts_never_see_each_others_orders(desk: Desk) -> None:
    alice, bob = desk.client(trader(ALICE)), desk.client(trader(BOB))
    order_id = (await alice.post(ORDERS, json=limit_buy("shared-id"))).json()["order"]["order_id"]
    assert problem_of(await bob.get(f"{ORDERS}/{order_id}"), 404)["code"] == "unknown-order"
    assert problem_of(await bob.delete(f"{ORDERS}/{order_id}"), 404)["code"] == "unknown-order"
    bobs = await bob.post(ORDERS, json=limit_buy("shared-id"))  # his own id space
    assert bobs.status_code == 201
    assert bobs.json()["order"]["order_id"] != order_id
    desk.projector.catch_up()
    for client, account in ((alice, ALICE), (bob, BOB)):
        orders = (await client.get(ORDERS)).json()["orders"]
        assert [view["order"]["account"] for view in orders] == [account]
        events = (await client.get("/trading/v1/events")).json()["events"]
        assert {item["event"]["account"] for item in events} == {account}
    assert (await alice.get(f"{ORDERS}/{order_id}")).json()["order"]["status"] == "accepted"


async def test_positions_over_http_equal_the_sum_of_the_fills(desk: Desk) -> None:
    alice = desk.client(trader(ALICE))
    await alice.post(ORDERS, json=limit_buy("l-1", price="49900", quantity="0.3"))
    market = {"client_order_id": "m-1", "instrument": XBT, "side": "buy", "type": "market",
              "quantity": "0.2"}  # fmt: skip
    placed = await alice.post(ORDERS, json=market)
    assert placed.status_code == 201, placed.text
    await desk.ticks(("50010", "0.1"), ("49950", "0.5"), ("49800", "0.15"))
    sell = market | {"client_order_id": "m-2", "side": "sell", "quantity": "0.05"}
    placed = await alice.post(ORDERS, json=sell)  # spot: sells what the buys bought
    assert placed.status_code == 201, placed.text
    await desk.ticks(("49700", "1"))
    fills = (await alice.get("/trading/v1/fills", params={"limit": "1000"})).json()["fills"]
    assert len(fills) >= 3
    total = sum(
        (D(item["fill"]["quantity"]) * (1 if item["fill"]["side"] == "buy" else -1))
        for item in fills
    )
    positions = (await alice.get("/trading/v1/positions")).json()["positions"]
    assert [(p["position"]["instrument"], D(p["position"]["quantity"])) for p in positions] == [
        (XBT, total)
    ]
    assert total == D("0.3") + D("0.2") - D("0.05")
    assert positions[0]["last_price"] == "49700"
    balances = (await alice.get("/trading/v1/balances")).json()["balances"]
    assert {b["balance"]["currency"]: D(b["balance"]["cash"]) for b in balances}["XBT"] == total


async def test_openapi_health_and_readiness(desk: Desk) -> None:
    anyone = desk.client(None)
    document = (await anyone.get("/trading/v1/openapi.json")).json()
    assert set(document["paths"]) >= {ORDERS, f"{ORDERS}/{{order_id}}", "/trading/v1/fills"}
    assert "PlaceBody" in document["components"]["schemas"]
    assert (await anyone.get("/healthz")).status_code == 200
    ready = (await anyone.get("/readyz")).json()
    assert ready == {"status": "ready", "checks": {"database": "ok", "service": "ok"}}


DEPOSITS = "/trading/v1/deposits"


def cash_of(balances: list[dict[str, Any]]) -> dict[str, Decimal]:
    return {item["balance"]["currency"]: D(item["balance"]["cash"]) for item in balances}


async def test_a_deposit_adds_paper_money_and_answers_the_balances(desk: Desk) -> None:
    alice = desk.client(trader(ALICE))
    answer = await alice.post(DEPOSITS, json={"currency": "USDT", "amount": "2500.125"})
    assert answer.status_code == 201, answer.text
    balances = answer.json()["balances"]
    assert cash_of(balances) == {"USDT": D("102500.125")}
    assert D(balances[0]["available"]) == D("102500.125")
    fresh = await alice.post(DEPOSITS, json={"currency": "EUR", "amount": 10})  # a JSON number
    assert cash_of(fresh.json()["balances"]) == {"EUR": D(10), "USDT": D("102500.125")}
    desk.projector.catch_up()
    listed = (await alice.get("/trading/v1/balances")).json()["balances"]
    assert cash_of(listed) == {"EUR": D(10), "USDT": D("102500.125")}
    bob = desk.client(trader(BOB))  # another account's money did not move
    assert cash_of((await bob.get("/trading/v1/balances")).json()["balances"]) == {
        "USDT": D(100_000)
    }
    kinds = [
        item["event"]["kind"] for item in (await alice.get("/trading/v1/events")).json()["events"]
    ]
    assert kinds.count("funds-deposited") == 3


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"currency": "USD", "amount": "0"}, "amount", "not-positive"),
        ({"currency": "USD", "amount": "-5"}, "amount", "not-positive"),
        ({"currency": "USD", "amount": "NaN"}, "amount", "not-positive"),
        ({"currency": "USD", "amount": "abc"}, "amount", "not-a-number"),
        ({"currency": "USD", "amount": True}, "amount", "not-a-number"),
        ({"currency": "USD", "amount": "1000000000.00000001"}, "amount", "too-large"),
        ({"currency": "USD", "amount": "0.000000001"}, "amount", "too-precise"),
        ({"currency": "usd", "amount": "1"}, "currency", "format"),
        ({"currency": 5, "amount": "1"}, "currency", "format"),
        ({"amount": "1"}, "currency", "required"),
        ({"currency": "USD"}, "amount", "required"),
        ({"currency": "USD", "amount": "1", "account": 2}, "account", "forbidden"),
    ],
)
async def test_a_bad_deposit_is_422_naming_the_field(
    desk: Desk, body: dict[str, Any], field: str, code: str
) -> None:
    alice = desk.client(trader(ALICE))
    problem = problem_of(await alice.post(DEPOSITS, json=body), 422)
    assert problem["type"].endswith("/deposit-invalid")
    assert (problem["code"], problem["parameter"]) == (code, field)
    desk.projector.catch_up()
    balances = (await alice.get("/trading/v1/balances")).json()["balances"]
    assert cash_of(balances) == {"USDT": D(100_000)}  # nothing came in


async def test_the_largest_deposit_is_taken_and_a_body_that_is_not_an_object_is_refused(
    desk: Desk,
) -> None:
    alice = desk.client(trader(ALICE))
    largest = await alice.post(DEPOSITS, json={"currency": "USD", "amount": "1000000000"})
    assert largest.status_code == 201, largest.text
    assert problem_of(await alice.post(DEPOSITS, content=b"[1"), 422)["parameter"] == "body"
    read_only = tokens.key_token(account_id=ALICE, scopes=("read",))
    refused = await desk.client(read_only).post(DEPOSITS, json={"currency": "USD", "amount": "1"})
    assert problem_of(refused, 403)["code"] == "insufficient-scope"
    assert problem_of(await desk.client(None).post(DEPOSITS, json={}), 401)


async def test_deposits_are_refused_where_the_settings_do_not_allow_them(
    desk: Desk, database: Database
) -> None:
    events: EventStore[TradingEvent] = EventStore(database, EVENT_CODEC)
    schema = desk.projector.model.schema
    async with TradingQueries.open(database.settings.url, schema) as queries:
        app = create_app(desk.service, queries, events, TokenSettings(keys=tokens.keyset()))
        async with (
            serving(app) as server,
            httpx.AsyncClient(base_url=server.url, headers=bearer(ALICE)) as client,
        ):
            answer = await client.post(DEPOSITS, json={"currency": "USD", "amount": "1"})
            problem = problem_of(answer, 403)
            assert (problem["code"], problem["type"].rsplit("/", 1)[-1]) == (
                "deposits-off", "deposits-not-allowed"
            )  # fmt: skip
            document = (await client.get("/trading/v1/openapi.json")).json()
    assert set(document["paths"][DEPOSITS]["post"]["responses"]) == {"201", "default"}
    assert "DepositBody" in document["components"]["schemas"]
    assert (await desk.service.book(ALICE)).account.balance("USD") == 0


def bearer(account: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {trader(account)}"}
