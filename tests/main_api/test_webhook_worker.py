"""The webhook worker's connection and its pace, on real PostgreSQL: each attempt resolves the
host once and connects to the address it checked (a name answering a public address, then a
loopback one, never leads to a request to loopback); a slow endpoint holds back only its own
deliveries, one at a time; deliveries and dead letters kept past their retention are
deleted, in bounded batches.

Nothing here is sent anywhere but 127.0.0.1: the "public" address of the rebinding case is
answered by a transport in the test (``httpx.MockTransport``, no network), and the
worker-level cases let 127.0.0.1 (and nothing else) through with the allow-list meant for
tests, ``WebhookSettings.allowed_networks``."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest

from main_api.webhooks.settings import WebhookSettings
from main_api.webhooks.store import Claimed, WebhookStore
from main_api.webhooks.worker import WebhookWorker
from tests.main_api.conftest import ALICE, BOB, Api
from tests.main_api.test_webhooks import (
    FAST,
    Receiver,
    fire,
    hooked,  # noqa: F401
    listed,
    new_webhook,
    receiving,
    running_api,
    unsent,  # noqa: F401
    until,
)

PUBLIC = "93.184.215.14"
"""A globally routable address, answered by the test's resolver and "reached" only through a
mock transport."""
LOOPBACK_ONLY = replace(
    FAST, worker=False, allow_private_hosts=False,
    allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
)  # fmt: skip
"""Public hosts only, and 127.0.0.1 (the receivers'): 127.0.0.2 and every other loopback or
private address stays refused."""


@dataclass
class Resolver:
    """Answers ``answers[n]`` to the ``n``-th question (the last one thereafter), and keeps
    the questions."""

    answers: list[list[str]]
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


@contextlib.asynccontextmanager
async def working(
    api: Api, settings: WebhookSettings, resolver: Resolver
) -> AsyncIterator[WebhookWorker]:
    """A worker (resolving with ``resolver``) running on ``api``'s store for the block."""
    worker = WebhookWorker(WebhookStore(api.store), settings, resolve=resolver)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


def claimed(url: str, attempts: int = 1) -> Claimed:
    return Claimed(
        fire_id="a-1:1", webhook_id="h-1", body=b"{}", attempts=attempts, url=url,
        lease_until=0, secrets=("whsec_test",),
    )  # fmt: skip


async def test_a_name_answering_public_then_loopback_is_never_sent_to_loopback(
    unsent: Api,  # noqa: F811
) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204, stream=httpx.ByteStream(b""))

    resolver = Resolver([[PUBLIC], ["127.0.0.1"]])
    worker = WebhookWorker(
        WebhookStore(unsent.store), replace(FAST, allow_private_hosts=False), resolve=resolver
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        first = await worker.attempt(client, claimed("https://hooks.example.com/in?a=1"))
        second = await worker.attempt(client, claimed("https://hooks.example.com/in?a=1", 2))
        both = Resolver([[PUBLIC, "127.0.0.1"]])
        worker.resolve = both
        mixed = await worker.attempt(client, claimed("http://hooks.example.com:8080/in"))
        broken = await worker.attempt(client, claimed("http://[::1/in"))  # not even parsed
    assert (first.status, second.error, mixed.error, broken.error) == (
        204, "address-not-allowed", "address-not-allowed", "InvalidURL"
    )  # fmt: skip
    assert resolver.asked == [("hooks.example.com", 443)] * 2  # once an attempt, no more
    [request] = sent  # the second attempt, resolved to loopback, was not sent
    assert (request.url.scheme, request.url.host, request.url.port, request.url.raw_path) == (
        "https", PUBLIC, None, b"/in?a=1"
    )  # fmt: skip
    assert request.headers["Host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"  # TLS checks the name
    assert request.headers["Ganntec-Event-Id"] == "a-1:1"


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` (its own authority) and its key, made by ``openssl``."""
    if shutil.which("openssl") is None:
        pytest.skip("the https case needs the openssl command to make its certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


async def test_an_https_endpoint_is_reached_at_the_checked_address_under_its_name(
    unsent: Api,  # noqa: F811
    tmp_path: Path,
) -> None:
    cert, key = self_signed(tmp_path, "hooks.ganntec.test")
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    names: list[str | None] = []

    def named_as(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        names.append(name)

    served.sni_callback = named_as
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=served)
    port = server.sockets[0].getsockname()[1]
    resolver = Resolver([["127.0.0.1"]])
    worker = WebhookWorker(WebhookStore(unsent.store), LOOPBACK_ONLY, resolve=resolver)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with server, httpx.AsyncClient(verify=trusting) as client:
        named = await worker.attempt(client, claimed(f"https://hooks.ganntec.test:{port}/in"))
        other = await worker.attempt(client, claimed(f"https://other.ganntec.test:{port}/in"))
    assert (named.status, other.error) == (204, "connect-error")  # the name, not the address,
    assert names == ["hooks.ganntec.test", "other.ganntec.test"]  # is what TLS checks
    assert f"\r\nhost: hooks.ganntec.test:{port}\r\n".encode() in heads[0].lower()
    assert len(heads) == 1


async def test_the_worker_connects_to_the_address_it_checked(schema: tuple[str, str]) -> None:
    async with (
        running_api(*schema, LOOPBACK_ONLY) as api,
        receiving(Receiver(0)) as receiver,
    ):
        alice = api.client(ALICE)
        port = httpx.URL(receiver.url).port
        named = f"http://hooks.ganntec.test:{port}/hook"  # .test: no real DNS answers it
        webhook_id, _ = await new_webhook(alice, named)
        resolver = Resolver([["127.0.0.1"], ["127.0.0.2"]])
        async with working(api, LOOPBACK_ONLY, resolver):
            event = await fire(api, alice, ALICE)

            async def delivered() -> bool:
                return bool(await listed(alice, "delivered"))

            await until(delivered)
            # the name now answers another loopback address: refused, nothing sent
            later = await fire(api, alice, ALICE)

            async def refused() -> bool:
                found = await listed(alice, "pending")
                return bool(found) and found[0]["last_error"] == "address-not-allowed"

            await until(refused)
        [pending] = await listed(alice, "pending")
    assert (pending["fire_id"], pending["webhook_id"]) == (later.fire_id, webhook_id)
    assert resolver.asked[0] == ("hooks.ganntec.test", port)
    [(headers, _)] = receiver.got  # on 127.0.0.1, the one address the worker checked
    assert headers["Host"] == f"hooks.ganntec.test:{port}"
    assert headers["Ganntec-Event-Id"] == event.fire_id


async def test_a_slow_endpoint_holds_back_only_its_own_deliveries_one_at_a_time(
    schema: tuple[str, str],
) -> None:
    bound = 0.5  # the slow endpoint answers after 1 s, well within the 2 s timeout
    async with (
        running_api(*schema, replace(FAST, worker=True)) as api,
        receiving(Receiver(0, delay=1.0)) as slow,
        receiving(Receiver(0)) as fast,
    ):
        alice, bob = api.client(ALICE), api.client(BOB)
        await new_webhook(alice, slow.url)
        await new_webhook(bob, fast.url)
        firsts = [await fire(api, alice, ALICE) for _ in range(2)]

        async def held() -> bool:
            return slow.holding == 1

        await until(held)
        began = time.monotonic()
        bobs = await fire(api, bob, BOB)

        async def fast_got() -> bool:
            return bool(fast.got)

        await until(fast_got)
        waited, still = time.monotonic() - began, slow.holding

        async def all_delivered() -> bool:
            return len(await listed(alice, "delivered")) == 2

        await until(all_delivered)
    assert waited < bound, f"Bob's delivery waited {waited:.3f} s behind Alice's slow endpoint"
    assert still == 1  # Alice's slow attempt was still in flight
    assert fast.got[0][0]["Ganntec-Event-Id"] == bobs.fire_id
    assert slow.peak == 1  # one attempt at a time per endpoint
    assert [h["Ganntec-Event-Id"] for h, _ in slow.got] == [e.fire_id for e in firsts]
    assert slow.answered[1] - slow.answered[0] >= 0.9  # the second went after the first


async def test_old_deliveries_and_dead_letters_are_deleted_in_bounded_batches(
    hooked: Api,  # noqa: F811
) -> None:
    alice = hooked.client(ALICE)
    hooks = WebhookStore(hooked.store)
    async with receiving(Receiver(0)) as good, receiving(Receiver(-1)) as bad:
        await new_webhook(alice, good.url)
        events = [await fire(hooked, alice, ALICE) for _ in range(3)]

        async def settled() -> bool:
            states = [d["state"] for d in await listed(alice, "delivered")]
            return len(states) == 3

        await until(settled)
        await new_webhook(alice, bad.url)
        await fire(hooked, alice, ALICE)  # to both endpoints: delivered once, dead once

        async def dead() -> bool:
            return len(await listed(alice, "dead")) == 1

        await until(dead)
        await until(lambda: _count(alice, "delivered", 4))
    now = hooks.clock()
    assert await hooks.prune(delivered_before=0, dead_before=0, limit=10) == 0
    assert await hooks.prune(delivered_before=now, dead_before=0, limit=3) == 3
    assert len(await listed(alice, "delivered")) == 1
    assert len(await listed(alice, "dead")) == 1  # dead letters are kept longer
    assert await hooks.prune(delivered_before=now, dead_before=0, limit=3) == 1
    assert await hooks.prune(delivered_before=now, dead_before=now, limit=3) == 1
    assert await listed(alice, "delivered") == await listed(alice, "dead") == []
    assert {e.fire_id for e in events} <= {h["Ganntec-Event-Id"] for h, _ in good.got}


async def _count(client: httpx.AsyncClient, state: str, n: int) -> bool:
    return len(await listed(client, state)) == n


async def test_the_worker_prunes_what_is_kept_no_longer(schema: tuple[str, str]) -> None:
    settings = replace(
        FAST, keep_delivered_s=0.3, keep_dead_s=30.0, prune_s=0.1, prune_batch=1
    )  # kept 0.3 s, pruned one row of each kind a statement
    async with (
        running_api(*schema, settings) as api,
        receiving(Receiver(0)) as good,
        receiving(Receiver(-1)) as bad,
    ):
        alice = api.client(ALICE)
        await new_webhook(alice, bad.url)
        await fire(api, alice, ALICE)
        await until(lambda: _count(alice, "dead", 1))
        await new_webhook(alice, good.url)
        for _ in range(3):
            await fire(api, alice, ALICE)

        async def all_got() -> bool:
            return len(good.got) == 3

        await until(all_got)
        await until(lambda: _count(alice, "dead", 4))  # the bad endpoint's, kept 30 s
        await until(lambda: _count(alice, "delivered", 0), within=5.0)
        assert len(await listed(alice, "dead")) == 4
    assert len(good.got) == 3
