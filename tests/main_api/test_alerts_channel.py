"""Fired alerts delivered over WebSocket: the gateway's ``alerts`` channel reading the main
API's tables (``main_api.alert_reads.AlertSnapshots``) in a real PostgreSQL, the firings on
``alerts.events`` of the in-process bus, and clients over real WebSockets with the auth
service's access tokens, and the SDK's ``MarketStream`` holding the channel across a cut.

Each firing is recorded as the main API records it (``MainStore.record_firing``) apart from
its publication, in either order, as the evaluator's processor may do."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection

from core.alert_reads import fired_json
from core.alerts import AlertFired, AlertSpec, Condition, fired
from core.secrets import Secret
from core.topic_codecs import ALERTS_EVENTS_CODEC
from core.topics import ALERTS_EVENTS
from main_api.alert_reads import AlertSnapshots
from main_api.store import MainStore
from sdk import AlertUpdate, MarketStream, Message, PrivateSnapshot
from sdk.credentials import AccessToken
from sdk.protocol import Backoff
from streams.memory import MemoryBus
from tests.support import tokens
from tests.ws_gateway.harness import TIMEOUT, client, recv, request
from tests.ws_gateway.harness import running as gateway_running
from tests.ws_gateway.revocations import tokens as access_tokens
from ws_gateway import Gateway

from .conftest import ALICE, BOB

XBT = "KRAKEN:XBTUSDT"
QUIET_S = 0.3
"""How long a client is watched for a message that must not come."""


def firing(n: int, account: int = ALICE, arming: int = 1) -> AlertFired:
    spec = AlertSpec(
        alert_id=f"a-{account}-{n}", account=account, instrument=XBT,
        condition=Condition.CROSS_UP, threshold=Decimal("50000.5"),
    )  # fmt: skip
    return fired(spec, arming, Decimal(f"50001.{n}"), ts=n * 10**9, gap=False, trade_id=n)


def as_json(event: AlertFired) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(fired_json(event))
    return decoded


async def publish(bus: MemoryBus, *events: AlertFired) -> None:
    topic = bus.topic(ALERTS_EVENTS)
    for event in events:
        await asyncio.wait_for(topic.publish(*ALERTS_EVENTS_CODEC.record(event)), TIMEOUT)


async def next_message(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    while True:
        message = await recv(ws, timeout)
        if message["type"] != "heartbeat":
            return message


async def nothing_more(ws: ClientConnection) -> None:
    with contextlib.suppress(TimeoutError):
        message = await next_message(ws, QUIET_S)
        raise AssertionError(f"sent {message}")


async def subscribed(ws: ClientConnection, rid: int) -> dict[str, Any]:
    """Subscribe to ``alerts``; its snapshot (after checking the ``subscribed`` answer)."""
    await request(ws, op="subscribe", id=rid, channel="alerts")
    answer = await next_message(ws)
    assert (answer["type"], answer["id"], answer["channel"]) == ("subscribed", rid, "alerts")
    snapshot = await next_message(ws)
    assert (snapshot["type"], snapshot["channel"]) == ("snapshot", "alerts"), snapshot
    assert snapshot["epoch"] == answer["epoch"]
    return snapshot


@contextlib.asynccontextmanager
async def platform(schema: tuple[str, str]) -> AsyncIterator[tuple[MemoryBus, MainStore, Gateway]]:
    url, name = schema
    async with (
        MainStore.open(url, name) as store,
        AlertSnapshots.open(url, name) as reads,
        MemoryBus() as bus,
        gateway_running(authenticator=access_tokens("demo"), bus=bus, alert_reads=reads) as (
            _,
            gateway,
        ),
    ):
        yield bus, store, gateway


def connected(
    gateway: Gateway, account: int | None
) -> contextlib.AbstractAsyncContextManager[ClientConnection]:
    if account is None:
        return client(gateway, "/ws")
    token = tokens.issue(account_id=account, principal=account, scopes=("read",))
    return client(gateway, f"/ws?token={token}")


async def test_an_accounts_firings_reach_only_its_alerts_channel_once_each_and_resume(
    schema: tuple[str, str],
) -> None:
    async with platform(schema) as (bus, store, gateway):
        old = [firing(1), firing(2)]
        for event in (*old, firing(1, BOB)):
            assert await store.record_firing(event)
        await store.mark_read(ALICE, old[0].fire_id)

        async with connected(gateway, ALICE) as alice, connected(gateway, BOB) as bob:
            snapshot = await subscribed(alice, 1)
            assert snapshot["account"] == ALICE
            assert snapshot["alerts"] == [as_json(event) for event in old]  # oldest first
            assert snapshot["unread"] == 1
            start, epoch = snapshot["seq"], snapshot["epoch"]
            bobs = await subscribed(bob, 1)
            assert [a["fire_id"] for a in bobs["alerts"]] == [firing(1, BOB).fire_id]

            new = firing(3)
            await publish(bus, new)  # published, then recorded
            assert await store.record_firing(new)
            await publish(bus, firing(2, BOB), old[1], new)  # bob's; repeats of alice's
            message = await next_message(alice)
            assert message == {
                "type": "alert", "channel": "alerts", "account": ALICE, "seq": start + 1,
                "alert": as_json(new),
            }  # fmt: skip
            await nothing_more(alice)
            assert (await next_message(bob))["alert"]["fire_id"] == firing(2, BOB).fire_id
            await nothing_more(bob)
            seen = message["seq"]

        missed = [firing(4), firing(5, arming=2)]
        for event in missed:  # recorded, then published, while alice is away
            assert await store.record_firing(event)
            await publish(bus, event)
        await publish(bus, missed[0])
        async with asyncio.timeout(TIMEOUT):
            while gateway.stats.alert_records < 7:
                await asyncio.sleep(0.01)

        async with connected(gateway, ALICE) as again:
            await request(again, op="resume", id=2, channel="alerts", seq=seen, epoch=epoch)
            answer = await next_message(again)
            assert (answer["type"], answer["epoch"]) == ("subscribed", epoch)
            replayed = [await next_message(again) for _ in missed]
            assert [(m["seq"], m["alert"]) for m in replayed] == [
                (seen + 1, as_json(missed[0])), (seen + 2, as_json(missed[1]))
            ]  # fmt: skip
            await nothing_more(again)

        async with connected(gateway, ALICE) as late:  # a new subscriber: one snapshot of all
            latest = await subscribed(late, 1)
            everything = [*old, new, *missed]
            assert latest["alerts"] == [as_json(event) for event in everything]
            assert (latest["seq"], latest["epoch"], latest["unread"]) == (seen + 2, epoch, 4)
            after = firing(6)
            await publish(bus, after)
            assert (await next_message(late))["seq"] == seen + 3


async def test_a_client_without_an_account_is_refused_with_our_code(
    schema: tuple[str, str],
) -> None:
    async with platform(schema) as (_, _store, gateway), connected(gateway, None) as anonymous:
        await request(anonymous, op="subscribe", id=5, channel="alerts")
        refused = await next_message(anonymous)
        assert (refused["type"], refused["code"], refused["field"], refused["id"]) == (
            "error", "not_entitled", "channel", 5
        )  # fmt: skip
        await request(anonymous, op="ping", id=6)
        assert await next_message(anonymous) == {"type": "pong", "id": 6}


class FixedToken:
    """An account's access token as the SDK's token source (valid for the test's length)."""

    def __init__(self, account: int) -> None:
        self.token = tokens.issue(account_id=account, principal=account, scopes=("read",))

    async def access_token(self) -> AccessToken:
        now = time.time()
        return AccessToken(Secret(self.token), now + tokens.TTL_S, now + tokens.TTL_S, "pro")


async def test_the_sdk_stream_holds_the_alerts_channel_across_a_cut(
    schema: tuple[str, str],
) -> None:
    async with (
        platform(schema) as (bus, store, gateway),
        MarketStream(gateway.url, FixedToken(ALICE), backoff=Backoff(base=0.05, cap=0.1)) as stream,
    ):
        old = firing(1)
        assert await store.record_firing(old)
        await stream.subscribe_alerts(snapshot=10)
        received: list[Message] = []

        async def until(count: int) -> None:
            async for message in stream:
                received.append(message)
                if len(received) == count:
                    return

        async with asyncio.timeout(TIMEOUT):
            await until(1)
            snapshot = received[0]
            assert isinstance(snapshot, PrivateSnapshot)
            assert (snapshot.alerts, snapshot.unread) == ([old], 1)
            await publish(bus, firing(2))
            await until(2)
            assert stream._ws is not None
            stream._ws.transport.abort()  # cut: no close frame, as a reset
            await publish(bus, firing(3), firing(2))  # one while away, and a repeat
            await publish(bus, firing(4, BOB))
            while stream.connections < 2:
                await asyncio.sleep(0.02)
            await publish(bus, firing(5))
            await until(4)
        updates = received[1:]
        assert all(isinstance(m, AlertUpdate) for m in updates)
        assert [(m.seq, m.alert) for m in updates] == [  # type: ignore[union-attr]
            (snapshot.seq + n, firing(number)) for n, number in ((1, 2), (2, 3), (3, 5))
        ]
