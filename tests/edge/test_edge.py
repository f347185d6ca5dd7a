"""The edge: a real HAProxy routing to the real history API and gateway, bounding input,
limiting request rates and taking a failed backend out and back in."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from edge.config import PROBLEM_TYPE_BASE, RateLimits, Upstream
from edge.haproxy import EdgeError
from edge.runtime import Runtime
from machine import free_port
from tests.support.children import child

from .conftest import TIMEOUT, Stack, api_server, eventually

PROBLEM = "application/problem+json"
REPO = Path(__file__).resolve().parents[2]


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["type"] == PROBLEM_TYPE_BASE + kind
    assert body["status"] == status
    return body


async def test_routes_reach_the_history_api_and_the_chart(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        direct = httpx.AsyncClient(base_url=stack.api.url, timeout=TIMEOUT)
        async with direct:
            for path in ("/v1/instruments", "/udf/config", "/openapi.json"):
                through, straight = await edge.get(path), await direct.get(path)
                assert through.status_code == 200, (path, through.text)
                assert through.json() == straight.json()
        page = await edge.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")


async def test_services_not_built_yet_answer_503_problems(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        # /trading answers 503 only to a token that may trade (test_tokens.py)
        for path in ("/api", "/api/v1/watchlists", "/auth/v1/login"):
            body = assert_problem(await edge.get(path), 503, "not-available")
            assert path.split("/")[1] in str(body["detail"])


async def test_websocket_passes_through_the_edge(stack: Stack) -> None:
    url = stack.url.replace("http://", "ws://") + "/ws"
    async with connect(url, open_timeout=TIMEOUT) as ws:
        await ws.send(json.dumps({"op": "ping", "id": 7}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert answer["id"] == 7
        assert answer["type"] == "pong"
    assert stack.gateway.stats.connections >= 1


async def test_websockets_from_one_address_are_capped_at_the_edge(stack: Stack) -> None:
    await stack.reload(max_connections_per_address=3)
    url = stack.url.replace("http://", "ws://") + "/ws"
    async with contextlib.AsyncExitStack() as held:
        for _ in range(3):
            await held.enter_async_context(connect(url, open_timeout=TIMEOUT))
        with pytest.raises(InvalidStatus) as refused:
            await held.enter_async_context(connect(url, open_timeout=TIMEOUT))
        answer = refused.value.response
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "5"
        assert json.loads(answer.body)["type"].endswith("/too-many-connections")
        async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
            assert (await edge.get("/v1/instruments")).status_code == 200  # HTTP still served
    # the connections closed, the address may connect again
    await eventually(lambda: stack.gateway.connections_from("127.0.0.1") == 0)
    async with connect(url, open_timeout=TIMEOUT) as ws:
        await ws.send(json.dumps({"op": "ping", "id": 1}))
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "pong"


async def test_following_dns_the_edge_serves_while_a_service_name_does_not_resolve(
    stack: Stack,
) -> None:
    later = Upstream("main-api", ("no-such-service.invalid:8040",))
    await stack.reload(follow_dns=True, main_api=later)
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        assert_problem(await edge.get("/api/v1/alerts"), 503, "unavailable")
        assert (await edge.get("/v1/instruments")).status_code == 200


async def test_anonymous_requests_over_the_rate_get_429_with_retry_after(stack: Stack) -> None:
    await stack.reload(limits=RateLimits(anonymous_per_address=300, window_s=1))  # 5 a second
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        answers = [await edge.get("/v1/instruments") for _ in range(12)]
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) >= 5, statuses
    limited = [answer for answer in answers if answer.status_code == 429]
    assert limited, statuses
    assert_problem(limited[0], 429, "rate-limited")
    assert limited[0].headers["retry-after"] == "1"
    await asyncio.sleep(2.2)  # HAProxy's rate weighs this window and the last
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        assert (await edge.get("/v1/instruments")).status_code == 200


async def test_logins_are_limited_per_address(stack: Stack) -> None:
    await stack.reload(limits=RateLimits(logins_per_address=12))  # 2 in a window of 10 s
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        answers = [await edge.post("/auth/v1/login", json={}) for _ in range(5)]
    statuses = [answer.status_code for answer in answers]
    assert statuses[:2] == [503, 503], statuses  # no auth service yet: past the limiter
    assert 429 in statuses[2:], statuses
    assert_problem(answers[statuses.index(429)], 429, "rate-limited")


async def test_hostile_input_is_bounded(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        assert_problem(await edge.get("/v1/instruments?x=" + "a" * 9000), 414, "uri-too-long")
        big = await edge.post("/v1/instruments", content=b"x" * 70_000)
        assert_problem(big, 413, "too-large")
        large_head = await edge.get("/v1/instruments", headers={"X-Filler": "a" * 20_000})
        assert_problem(large_head, 431, "header-too-large")
        # past HAProxy's buffer no rule runs: its own 400, and the connection is closed
        huge_head = await edge.get("/v1/instruments", headers={"X-Filler": "a" * 40_000})
        assert huge_head.status_code == 400
        assert (await edge.get("/v1/instruments")).status_code == 200


async def test_a_token_is_refused_when_the_edge_checks_none(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        answer = await edge.get("/v1/instruments", headers={"Authorization": "Bearer abc.def.ghi"})
    assert_problem(answer, 401, "invalid-token")
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_a_failed_backend_is_taken_out_and_comes_back(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        assert (await edge.get("/v1/instruments")).status_code == 200
        await stack.api.stop()

        async def unavailable() -> bool:
            answer = await edge.get("/v1/instruments")
            return answer.status_code == 503 and answer.json()["type"].endswith("/unavailable")

        await eventually(unavailable)
        answer = await edge.get("/v1/instruments")
        assert_problem(answer, 503, "unavailable")
        assert answer.headers["retry-after"] == "5"
        async with api_server(stack.history, stack.api_port):

            async def back() -> bool:
                return (await edge.get("/v1/instruments")).status_code == 200

            await eventually(back)


async def test_metrics_are_served_on_the_admin_address(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as admin:
        answer = await admin.get(stack.edge.metrics_url())
    assert answer.status_code == 200
    assert "haproxy_frontend_http_requests_total" in answer.text


async def test_a_configuration_haproxy_refuses_is_reported_and_the_old_one_kept(
    stack: Stack,
) -> None:
    from edge.config import TokenPolicy, VerifyKey

    missing = VerifyKey("k1", stack.edge.folder / "no-such-key.pem")
    with pytest.raises(EdgeError, match="the public key file of k1 is missing"):
        await stack.reload(tokens=TokenPolicy("mdp", "mdp", (missing,)))
    with pytest.raises(EdgeError, match="HAProxy refused the edge's configuration") as refused:
        await stack.reload(tokens=None, admin_host="no-such-host.invalid")
    message = str(refused.value)
    assert "\n" not in message
    assert "no-such-host.invalid" in message  # HAProxy's first alert names the culprit
    assert str(stack.edge.log_file) in message
    report = stack.edge.log_file.read_text()
    assert "HAProxy refused the configuration" in report
    assert "Fatal errors found in configuration" in report  # the whole report, in the log
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        assert (await edge.get("/v1/instruments")).status_code == 200


def history_api(
    database: str, port: int
) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """``mdp api`` in a process of its own (so that it can be killed with -9)."""
    command = [sys.executable, "-m", "mdp.cli", "api", "--port", str(port),
               "--database-url", database]  # fmt: skip
    return child(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def server_status(stack: Stack, backend: str, server: str) -> str:
    """HAProxy's view of one server (``UP``, ``DOWN``, ...), from its runtime API."""
    table = await Runtime(stack.settings.runtime_socket).execute("show", "stat")
    rows = csv.DictReader(io.StringIO(table.removeprefix("# ")))
    return next(
        row["status"] for row in rows if (row["pxname"], row["svname"]) == (backend, server)
    )


async def test_killing_one_of_two_history_apis_loses_no_request(
    stack: Stack, migrated_database: str
) -> None:
    ports = (free_port(), free_port())
    with (
        history_api(migrated_database, ports[0]),
        history_api(migrated_database, ports[1]) as doomed,
    ):
        apis = Upstream("api", tuple(f"127.0.0.1:{port}" for port in ports))
        await stack.reload(chart=apis, history=apis)
        for server in ("api1", "api2"):
            await eventually(lambda s=server: _is(stack, s, "UP"), timeout=60)  # type: ignore[misc]
        statuses: list[int] = []
        done = asyncio.Event()

        async def load(edge: httpx.AsyncClient) -> None:
            while not done.is_set():
                try:
                    statuses.append((await edge.get("/v1/instruments")).status_code)
                except httpx.TransportError:
                    statuses.append(0)

        async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
            clients = [asyncio.create_task(load(edge)) for _ in range(4)]
            await asyncio.sleep(1.0)
            doomed.kill()  # SIGKILL: no goodbye, requests in flight and idle connections cut
            await eventually(lambda: _is(stack, "api2", "DOWN"))
            await asyncio.sleep(0.5)
            done.set()
            await asyncio.gather(*clients)
        assert len(statuses) > 20
        assert set(statuses) == {200}, {status: statuses.count(status) for status in set(statuses)}
        doomed.wait()
        with history_api(migrated_database, ports[1]):
            await eventually(lambda: _is(stack, "api2", "UP"), timeout=60)


async def _is(stack: Stack, server: str, status: str) -> bool:
    return (await server_status(stack, "api", server)).startswith(status)


async def test_a_reload_whose_signal_is_lost_is_signalled_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A master that has just re-executed itself may miss a signal: the reload sends it again
    until the new configuration is served, within the start timeout."""
    process = stack.edge._process
    assert process is not None
    sent = process.send_signal
    dropped: list[int] = []

    def lose_the_first(sig: int) -> None:
        if sig == signal.SIGUSR2 and not dropped:
            dropped.append(sig)  # lost, as to a master without its handlers yet
            return
        sent(sig)

    monkeypatch.setattr(process, "send_signal", lose_the_first)
    await stack.reload(max_connections_per_address=7)
    assert dropped == [signal.SIGUSR2]
    admin = f"http://127.0.0.1:{stack.settings.admin_port}/generation"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        served = (await client.get(admin)).text.strip()
    assert served == str(stack.edge._generation)  # the configuration written last
