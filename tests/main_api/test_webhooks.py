"""Webhooks end to end, on real PostgreSQL, with a real HTTP receiver on 127.0.0.1: a firing
recorded once is enqueued once per endpoint; a receiver that fails the first attempts gets
the event, validly signed, after retries; one that always fails ends in the dead letters,
which the owner (only) sees and replays; two workers never send one delivery twice; the
routes refuse what is out of bounds with our codes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from access.settings import TokenSettings
from core.alerts import AlertFired
from main_api import create_app
from main_api.process import delivering
from main_api.settings import MainApiSettings
from main_api.store import MainStore, record_firings_in
from main_api.webhooks.schedule import RetrySchedule
from main_api.webhooks.settings import WebhookSettings
from main_api.webhooks.store import WebhookStore
from main_api.webhooks.worker import WebhookWorker
from sdk.webhooks import SIGNATURE_HEADER, verify
from tests.main_api.conftest import ALICE, BOB, Api, known, problem_of, refusal
from tests.main_api.test_accounts import ABOVE, fired_for
from tests.storage.stoppable import StoppablePostgres
from tests.support import tokens
from web.server import serving

FAST = WebhookSettings(
    allow_private_hosts=True, poll_s=0.5, retry_s=0.2, timeout_s=2.0, lease_s=1.0,
    schedule=RetrySchedule(max_attempts=4, base_s=0.05, max_delay_s=0.2),
)  # fmt: skip
"""Short waits, so that a test runs in seconds; 127.0.0.1 allowed (the receiver's)."""


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 500 to its first ``failing`` requests
    (all of them while ``failing`` is negative), then 204, each after ``delay`` seconds; it
    counts the requests it holds at once (``peak``: the most) and when each was answered."""

    failing: int
    delay: float = 0.0
    got: list[tuple[httpx.Headers, bytes]] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    url: str = ""
    holding: int = 0
    peak: int = 0

    async def endpoint(self, request: Request) -> Response:
        self.got.append((httpx.Headers(request.headers.raw), await request.body()))
        failed = self.failing < 0 or len(self.got) <= self.failing
        self.holding += 1
        self.peak = max(self.peak, self.holding)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.holding -= 1
        self.answered.append(time.monotonic())
        if failed:
            return Response("no", status_code=500)
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    """``receiver`` served on 127.0.0.1 at its ``url`` for the block."""
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    async with serving(app) as server:
        receiver.url = f"{server.url}/hook"
        yield receiver


@contextlib.asynccontextmanager
async def running_api(url: str, name: str, webhooks: WebhookSettings) -> AsyncIterator[Api]:
    settings = MainApiSettings(
        url, TokenSettings(keys=tokens.keyset()), schema=name, webhooks=webhooks
    )
    async with (
        MainStore.open(url, name) as store,
        serving(create_app(store, settings, known)) as server,
        delivering(store, settings),  # the worker, as the process runs it
    ):
        made = Api(store, server.url)
        yield made
        for client in made.clients:
            await client.aclose()


@pytest.fixture
async def hooked(schema: tuple[str, str]) -> AsyncIterator[Api]:
    """The API with 127.0.0.1 allowed and its webhook worker running."""
    async with running_api(*schema, FAST) as made:
        yield made


@pytest.fixture
async def unsent(schema: tuple[str, str]) -> AsyncIterator[Api]:
    """The same without the worker (the test runs its own)."""
    async with running_api(*schema, replace(FAST, worker=False)) as made:
        yield made


async def until(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.05)


async def new_webhook(client: httpx.AsyncClient, url: str) -> tuple[str, str]:
    made = await client.post("/webhooks", json={"url": url})
    assert made.status_code == 201, made.text
    return made.json()["webhook"]["webhook_id"], made.json()["secret"]


async def fire(api: Api, client: httpx.AsyncClient, account: int) -> AlertFired:
    """A new alert of ``account``'s, fired (recorded as the evaluator records it)."""
    alert_id = (await client.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"]
    event = fired_for(account, alert_id)
    assert await api.store.record_firing(event)
    return event


async def listed(client: httpx.AsyncClient, state: str) -> list[dict[str, Any]]:
    path = "/webhooks/dead-letters" if state == "dead" else "/webhooks/deliveries"
    answer = await client.get(path, params={} if state == "dead" else {"state": state})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["dead_letters" if state == "dead" else "deliveries"]
    return found


def hmac_of(secret: str, header: str, body: bytes) -> bool:
    """The signature checked apart from ``core.webhooks``: HMAC-SHA256 of ``t + "." + body``,
    with ``t`` within five minutes of now."""
    matched = re.fullmatch(r"t=(\d+)((?:,v1=[0-9a-f]{64})+)", header)
    assert matched, header
    timestamp = matched.group(1)
    assert abs(time.time() - int(timestamp)) < 300
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return mac in matched.group(2).split(",v1=")[1:]


async def test_a_receiver_that_fails_first_gets_the_event_validly_signed_after_retries(
    hooked: Api,
) -> None:
    alice = hooked.client(ALICE)
    async with receiving(Receiver(failing=2)) as receiver:
        made = await alice.post("/webhooks", json={"url": receiver.url})
        assert made.status_code == 201, made.text
        assert made.headers["Cache-Control"] == "no-store"
        webhook_id, secret = made.json()["webhook"]["webhook_id"], made.json()["secret"]
        assert secret.startswith("whsec_")
        assert secret not in (await alice.get("/webhooks")).text
        event = await fire(hooked, alice, ALICE)

        async def delivered() -> bool:
            return bool(await listed(alice, "delivered"))

        await until(delivered)
    assert [headers["Ganntec-Delivery-Attempt"] for headers, _ in receiver.got] == ["1", "2", "3"]
    assert {headers["Ganntec-Event-Id"] for headers, _ in receiver.got} == {event.fire_id}
    assert len({body for _, body in receiver.got}) == 1  # the same bytes each time
    headers, body = receiver.got[-1]
    assert headers["Content-Type"] == "application/json"
    assert verify(secret, body, headers[SIGNATURE_HEADER], now=time.time()) > 0
    assert hmac_of(secret, headers[SIGNATURE_HEADER], body)
    assert not hmac_of("whsec_another", headers[SIGNATURE_HEADER], body)
    sent = json.loads(body)
    assert (sent["id"], sent["type"], sent["data"]["alert_id"], sent["data"]["price"]) == (
        event.fire_id, "alert.fired", event.alert_id, "100.5"
    )  # fmt: skip
    [delivery] = await listed(alice, "delivered")
    assert (delivery["webhook_id"], delivery["fire_id"], delivery["attempts"],
            delivery["last_status"], delivery["last_error"]) == (
        webhook_id, event.fire_id, 3, 204, None
    )  # fmt: skip
    assert delivery["event"] == sent


async def test_one_that_always_fails_ends_dead_and_only_its_owner_sees_and_replays_it(
    hooked: Api,
) -> None:
    alice, bob = hooked.client(ALICE), hooked.client(BOB)
    async with receiving(Receiver(failing=-1)) as receiver:
        webhook_id, secret = await new_webhook(alice, receiver.url)
        event = await fire(hooked, alice, ALICE)

        async def dead() -> bool:
            return bool(await listed(alice, "dead"))

        await until(dead)
        [letter] = await listed(alice, "dead")
        assert (letter["fire_id"], letter["state"], letter["attempts"], letter["last_status"],
                letter["last_error"], letter["next_at"]) == (
            event.fire_id, "dead", 4, 500, "status 500", None
        )  # fmt: skip
        assert letter["event"]["id"] == event.fire_id
        assert len(receiver.got) == 4
        # another account sees nothing of it and cannot replay or delete it
        assert await listed(bob, "dead") == []
        assert (await bob.get("/webhooks/deliveries")).json()["deliveries"] == []
        assert (await bob.get("/webhooks")).json()["webhooks"] == []
        replay = f"/webhooks/{webhook_id}/dead-letters/{event.fire_id}/replay"
        assert refusal(await bob.post(replay), 404) == ("unknown-delivery", "fire_id")
        every = await bob.post("/webhooks/dead-letters/replay", params={"webhook_id": webhook_id})
        assert refusal(every, 404) == ("unknown-webhook", "webhook_id")
        assert (await bob.post("/webhooks/dead-letters/replay")).json() == {"replayed": 0}
        assert refusal(await bob.delete(f"/webhooks/{webhook_id}"), 404) == (
            "unknown-webhook", "webhook_id"
        )  # fmt: skip
        assert refusal(await bob.post(f"/webhooks/{webhook_id}/secret"), 404)[0] == (
            "unknown-webhook"
        )
        await asyncio.sleep(0.3)
        assert len(receiver.got) == 4
        assert [d["state"] for d in await listed(alice, "dead")] == ["dead"]
        # the owner replays it to a receiver that now answers
        receiver.failing = 0
        answer = await alice.post(replay)
        assert answer.status_code == 200, answer.text
        replayed = answer.json()["delivery"]
        assert (replayed["state"], replayed["attempts"], replayed["replays"]) == ("pending", 0, 1)

        async def delivered() -> bool:
            return bool(await listed(alice, "delivered"))

        await until(delivered)
        assert await listed(alice, "dead") == []
        assert refusal(await alice.post(replay), 409) == ("not-dead", "fire_id")
        missing = f"/webhooks/{webhook_id}/dead-letters/nothing:1/replay"
        assert refusal(await alice.post(missing), 404) == ("unknown-delivery", "fire_id")
    headers, body = receiver.got[-1]
    assert len(receiver.got) == 5
    assert (headers["Ganntec-Event-Id"], headers["Ganntec-Delivery-Attempt"]) == (
        event.fire_id, "1"
    )  # fmt: skip
    assert body == receiver.got[0][1]
    assert verify(secret, body, headers[SIGNATURE_HEADER], now=time.time())
    assert hmac_of(secret, headers[SIGNATURE_HEADER], body)


async def test_every_dead_letter_is_replayed_at_once(hooked: Api) -> None:
    alice = hooked.client(ALICE)
    async with receiving(Receiver(failing=-1)) as receiver:
        webhook_id, _ = await new_webhook(alice, receiver.url)
        events = [await fire(hooked, alice, ALICE) for _ in "ab"]

        async def dead() -> bool:
            return len(await listed(alice, "dead")) == 2

        await until(dead)
        receiver.failing = 0
        replayed = await alice.post(
            "/webhooks/dead-letters/replay", params={"webhook_id": webhook_id}
        )
        assert replayed.json() == {"replayed": 2}

        async def delivered() -> bool:
            return len(await listed(alice, "delivered")) == 2

        await until(delivered)
    assert [d["fire_id"] for d in await listed(alice, "delivered")] == [e.fire_id for e in events]


async def test_a_firing_recorded_again_is_sent_once_to_each_endpoint(hooked: Api) -> None:
    alice, bob = hooked.client(ALICE), hooked.client(BOB)
    async with receiving(Receiver(0)) as first, receiving(Receiver(0)) as second:
        await new_webhook(alice, first.url)
        await new_webhook(alice, second.url)
        alert_id = (await alice.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"]
        event = fired_for(ALICE, alert_id)
        told = await asyncio.gather(*(hooked.store.record_firing(event) for _ in range(4)))
        assert sorted(told) == [False, False, False, True]
        await fire(hooked, bob, BOB)  # Bob has no endpoint: nothing to send

        async def delivered() -> bool:
            return len(await listed(alice, "delivered")) == 2

        await until(delivered)
        await asyncio.sleep(0.3)
    assert [len(first.got), len(second.got)] == [1, 1]
    assert (await bob.get("/webhooks/deliveries")).json()["deliveries"] == []


async def test_two_workers_share_the_deliveries_never_send_one_twice_nor_two_at_once(
    unsent: Api, schema: tuple[str, str]
) -> None:
    alice = unsent.client(ALICE)
    async with receiving(Receiver(0, delay=0.01)) as receiver:
        await new_webhook(alice, receiver.url)
        events = [await fire(unsent, alice, ALICE) for _ in range(30)]
        stop = asyncio.Event()
        workers = [
            WebhookWorker(WebhookStore(unsent.store), replace(FAST, batch=4), listen_url=schema[0])
            for _ in range(2)
        ]
        running = [asyncio.create_task(worker.run(stop)) for worker in workers]

        async def delivered() -> bool:
            return len(receiver.got) >= 30

        await until(delivered)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*running)
    sent = [headers["Ganntec-Event-Id"] for headers, _ in receiver.got]
    assert sorted(sent) == sorted(event.fire_id for event in events)
    assert receiver.peak == 1  # one endpoint: one request at a time, whichever worker sends


async def test_a_rotated_secret_signs_beside_the_new_one_for_a_while(hooked: Api) -> None:
    alice = hooked.client(ALICE)
    async with receiving(Receiver(0)) as receiver:
        webhook_id, old = await new_webhook(alice, receiver.url)
        rotated = await alice.post(f"/webhooks/{webhook_id}/secret")
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old
        assert rotated.json()["webhook"]["previous_secret_until"] > 0
        await fire(hooked, alice, ALICE)

        async def got() -> bool:
            return bool(receiver.got)

        await until(got)
    headers, body = receiver.got[0]
    assert headers[SIGNATURE_HEADER].count("v1=") == 2
    for secret in (old, new):
        assert verify(secret, body, headers[SIGNATURE_HEADER], now=time.time())
        assert hmac_of(secret, headers[SIGNATURE_HEADER], body)


async def test_webhooks_are_bounded_and_refused_with_our_codes(api: Api) -> None:
    alice = api.client(ALICE)  # the default settings: public hosts only
    for body, code in [
        ({"url": "http://127.0.0.1:9000/hook"}, "host-not-allowed"),
        ({"url": "http://localhost/hook"}, "host-not-allowed"),
        ({"url": "https://example.com/" + "a" * 2048}, "too-long"),
        ({"url": "ftp://example.com/hook"}, "format"),
        ({"url": 5}, "type"),
        ({}, "required"),
    ]:
        assert refusal(await alice.post("/webhooks", json=body), 422) == (code, "url"), body
    assert refusal(await alice.post("/webhooks", json={"url": "https://a.example", "x": 1}), 422)
    huge = {"url": "https://example.com/" + "a" * 70_000}
    too_large = problem_of(await alice.post("/webhooks", json=huge), 413)
    assert too_large["type"].endswith("/content-too-large")  # the guarded server's bound
    made = [await new_webhook(alice, f"https://hooks.example.com/{n}") for n in range(5)]
    full = await alice.post("/webhooks", json={"url": "https://hooks.example.com/6"})
    assert refusal(full, 403) == ("plan-limit", "webhooks")
    listed_ = (await alice.get("/webhooks")).json()["webhooks"]
    assert [w["webhook_id"] for w in listed_] == [webhook_id for webhook_id, _ in made]
    assert all("secret" not in w for w in listed_)
    assert (await alice.delete(f"/webhooks/{made[0][0]}")).status_code == 204
    assert refusal(await alice.delete(f"/webhooks/{made[0][0]}"), 404)[0] == "unknown-webhook"
    bad = await alice.get("/webhooks/deliveries", params={"state": "lost"})
    assert refusal(bad, 400) == ("unknown", "state")
    assert refusal(await alice.get("/webhooks/dead-letters", params={"limit": "0"}), 400) == (
        "out-of-range", "limit"
    )  # fmt: skip
    document = (await api.client(None).get("/openapi.json")).json()
    assert "/api/v1/webhooks/{webhook_id}/dead-letters/{fire_id}/replay" in document["paths"]
    assert "WebhookEvent" in document["components"]["schemas"]


async def test_the_worker_rides_out_the_database_going_away_and_coming_back(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database("mdp")
    async with running_api(url, "main_api", FAST) as api, receiving(Receiver(1)) as receiver:
        alice = api.client(ALICE)
        _, secret = await new_webhook(alice, receiver.url)
        await asyncio.to_thread(stoppable_postgres.stop)
        await asyncio.sleep(1.0)  # the worker's rounds fail meanwhile; it keeps trying
        await asyncio.to_thread(stoppable_postgres.start)

        async def ready() -> bool:
            return (await alice.get(f"{api.url}/readyz")).status_code == 200

        await until(ready, within=30)
        event = await fire(api, alice, ALICE)

        async def delivered() -> bool:
            return bool(await listed(alice, "delivered"))

        await until(delivered)
    assert [headers["Ganntec-Event-Id"] for headers, _ in receiver.got] == [event.fire_id] * 2
    headers, body = receiver.got[-1]
    assert verify(secret, body, headers[SIGNATURE_HEADER], now=time.time())


async def test_a_rounds_firings_are_recorded_at_once_each_new_one_once(unsent: Api) -> None:
    alice, bob = unsent.client(ALICE), unsent.client(BOB)
    await new_webhook(alice, "http://127.0.0.1:9/hook")
    rearm = {**ABOVE, "arming": "rearm", "cooldown_s": 60}
    once = (await alice.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"]
    again = (await alice.post("/alerts", json=rearm)).json()["alert"]["alert_id"]
    told = (await alice.post("/alerts", json=rearm)).json()["alert"]["alert_id"]
    bobs = (await bob.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"]
    assert await unsent.store.record_firing(fired_for(ALICE, told))
    round_ = [
        fired_for(ALICE, once), fired_for(ALICE, again, 1), fired_for(ALICE, told),
        fired_for(ALICE, again, 1), fired_for(BOB, bobs), fired_for(ALICE, again, 2),
    ]  # fmt: skip
    async with unsent.store.transaction() as conn:
        new = await record_firings_in(conn, round_, now_ns=5)
    assert new == [f"{once}:1", f"{again}:1", f"{bobs}:1", f"{again}:2"]
    async with unsent.store.transaction() as conn:
        assert await record_firings_in(conn, round_, now_ns=6) == []
    pending = [d["fire_id"] for d in await listed(alice, "pending")]
    assert pending == [f"{told}:1", f"{once}:1", f"{again}:1", f"{again}:2"]
    assert (await bob.get("/webhooks/deliveries")).json()["deliveries"] == []
    notes = (await alice.get("/notifications")).json()["notifications"]
    assert [n["fire_id"] for n in notes] == [f"{again}:2", f"{again}:1", f"{once}:1", f"{told}:1"]
    assert (await alice.get(f"/alerts/{once}")).json()["alert"]["status"] == "fired"
    assert (await alice.get(f"/alerts/{again}")).json()["alert"]["status"] == "active"
    assert (await bob.get(f"/alerts/{bobs}")).json()["alert"]["status"] == "fired"
