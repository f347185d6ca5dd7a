"""`mdp up`'s front: the auth service, and the edge (a real HAProxy) as the one public port
with every service behind it on 127.0.0.1; anonymous visitors on the demo plan unless told
otherwise; without HAProxy, one line and the services on their own ports."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from auth.plans import PlanBook, load_plans
from auth.settings import AuthSettings
from core.engine import EngineConfig
from core.intervals import parse_intervals
from core.secrets import DatabaseUrl
from machine import stop_process
from mdp.cli import build_parser
from mdp.commands import auth as auth_command
from mdp.commands import up
from mdp.embedded import FeedSettings, PlatformSettings
from mdp.front import haproxy_missing
from tests.mdp.running import printed, running_platform
from tests.mdp.test_up_command import CHART, GATEWAY, MDP, STARTUP, wait_for_chart

PASSWORD = "a long enough password"  # a test account's
REVOKED_WITHIN_S = 5.0
"""The outbox is read every 0.25 s, the gateway closes at once: well within this."""
AUTH = re.compile(r"auth: (http://\S+)/auth")
needs_haproxy = pytest.mark.skipif(haproxy_missing() is not None, reason=str(haproxy_missing()))


def settings_of(database: str, **changes: object) -> PlatformSettings:
    settings = PlatformSettings(
        database_url=DatabaseUrl(database),
        feed=FeedSettings(instruments=("SYNTH:BTCUSD",), rate=20.0, history=0.0),
        engine=EngineConfig(intervals=parse_intervals(["1s", "1m"])),
        http_port=0,
        ws_port=0,
    )
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def revoke_account(database: str, email: str) -> None:
    """`mdp auth revoke --account`, as an operator runs it, in a process of its own."""
    done = subprocess.run(
        [str(MDP), "auth", "revoke", "--account", email],
        capture_output=True,
        text=True,
        env=os.environ | {"DATABASE_URL": database},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def problem_code(answer: httpx.Response) -> str:
    assert answer.headers["content-type"].startswith("application/problem+json")
    return str(answer.json()["type"]).rsplit("/", 1)[-1]


@needs_haproxy
async def test_the_edge_is_the_one_public_port_with_the_auth_service_behind_it(
    migrated_database: str,
) -> None:
    async with running_platform(settings_of(migrated_database)) as platform:
        assert platform.chart_url is not None
        public = platform.chart_url.rstrip("/")
        output = printed(platform)
        assert f"edge: {public}  (HAProxy)" in output
        assert CHART.findall(output) == [f"{public}/"]
        assert GATEWAY.findall(output) == [f"ws{public.removeprefix('http')}/ws"]
        (auth,) = AUTH.findall(output)
        assert urlsplit(auth).hostname == "127.0.0.1"  # behind the edge
        assert urlsplit(auth).port != urlsplit(public).port
        # HAProxy's metrics on a line of their own; the platform's on the metrics: line
        metrics = re.search(r"^edge-metrics: (http://127\.0\.0\.1:\d+/metrics)$", output, re.M)
        assert metrics is not None
        platform_metrics = re.findall(r"^metrics: (http://127\.0\.0\.1:\d+/metrics)$", output, re.M)
        assert platform_metrics == [platform.metrics_url]

        async with httpx.AsyncClient(base_url=public, timeout=10) as client:
            plans = (await client.get("/auth/v1/plans")).json()
            assert plans["anonymous"] == "demo"
            assert (await client.get("/v1/instruments")).status_code == 200  # anonymous
            credentials = {"email": "ada@example.org", "password": PASSWORD}
            assert (await client.post("/auth/v1/accounts", json=credentials)).status_code == 201
            login = await client.post("/auth/v1/login", json=credentials)
            assert login.status_code == 200
            token = login.json()["access_token"]
            signed = await client.get(
                "/v1/instruments", headers={"Authorization": f"Bearer {token}"}
            )
            assert signed.status_code == 200
            plans_signed = await client.get(
                "/auth/v1/plans", headers={"Authorization": f"Bearer {token}"}
            )
            assert plans_signed.status_code == 200
            forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
            refused = await client.get(
                "/v1/instruments", headers={"Authorization": f"Bearer {forged}"}
            )
            assert refused.status_code == 401
            assert problem_code(refused) == "invalid-token"
            exported = await client.get(metrics.group(1))
            assert exported.status_code == 200
            assert "haproxy_" in exported.text
            ours = await client.get(platform_metrics[0])
            assert ours.status_code == 200
            assert "mdp_http_request_duration_seconds_bucket" in ours.text
            assert "haproxy_" not in ours.text

        # the gateway behind the edge takes the token in its first frame; an operator's
        # revocation reaches the gateway and the history API on the platform's own bus
        assert platform.gateway_url is not None
        async with connect(platform.gateway_url) as socket:
            await socket.send(json.dumps({"op": "auth", "id": 1, "token": token}))
            answer = json.loads(await socket.recv())
            assert (answer["type"], answer["plan"]) == ("authenticated", "free")
            assert answer["delay"] == 900
            await asyncio.to_thread(revoke_account, migrated_database, "ada@example.org")
            async with asyncio.timeout(REVOKED_WITHIN_S):
                await socket.wait_closed()
        assert socket.close_code == 4403
        async with httpx.AsyncClient(base_url=public, timeout=10) as client:
            revoked = await client.get(
                "/v1/instruments", headers={"Authorization": f"Bearer {token}"}
            )
            # /auth/v1/plans reads no token: only the edge's revocation map refuses it there
            at_the_edge = await client.get(
                "/auth/v1/plans", headers={"Authorization": f"Bearer {token}"}
            )
        assert revoked.status_code == 401
        assert at_the_edge.status_code == 401
    output = printed(platform)
    assert token not in output
    assert PASSWORD not in output
    assert output.rstrip().endswith("stopped cleanly")


@needs_haproxy
async def test_without_an_anonymous_plan_the_edge_and_the_gateway_want_a_token(
    migrated_database: str,
) -> None:
    no_anonymous = AuthSettings(plans=AuthSettings().plans.with_anonymous(None))
    settings = settings_of(migrated_database, auth=no_anonymous)
    async with running_platform(settings) as platform:
        assert platform.chart_url is not None
        output = printed(platform)
        assert "(anonymous plan: none (a token is needed))" in output
        async with httpx.AsyncClient(base_url=platform.chart_url, timeout=10) as client:
            for path in ("/", "/config.json", "/static/mdp-session.js", "/static/mdp-chart.js"):
                assert (await client.get(path)).status_code == 200  # the page, to sign in on
            assert (await client.get("/auth/v1/plans")).json()["anonymous"] is None
            refused = await client.get("/v1/instruments")
            assert refused.status_code == 401
            assert problem_code(refused) == "token-required"
        # the edge lets /ws through (a browser's token comes in the first frame); the
        # gateway wants that frame before anything else
        assert platform.gateway_url is not None
        async with connect(platform.gateway_url) as socket:
            subscribe = {"op": "subscribe", "id": 1, "channel": "candles"}
            await socket.send(json.dumps(subscribe | {"instrument": "SYNTH:BTCUSD"}))
            answer = json.loads(await socket.recv())
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
        assert (answer["type"], answer["code"]) == ("error", "unauthorized")
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


def test_up_without_haproxy_says_so_in_one_line_and_serves_without_the_edge(
    migrated_database: str, tmp_path: Path
) -> None:
    log = tmp_path / "up.log"
    env = os.environ | {"DATABASE_URL": migrated_database, "HAPROXY": str(tmp_path / "none")}
    command = [str(MDP), "up", "--history-hours", "0", "--http-port", "0", "--ws-port", "0"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        text = wait_for_chart(process, log)
        (edge_line,) = [line for line in text.splitlines() if line.startswith("edge:")]
        assert edge_line.startswith("edge: not started, serving without it: ")
        chart, gateway = CHART.findall(text)[0], GATEWAY.findall(text)[0]
        assert urlsplit(chart).port != urlsplit(gateway).port  # each on its own port
        assert httpx.get(chart, timeout=10).status_code == 200
        assert AUTH.findall(text)
    finally:
        assert stop_process(process, STARTUP) == 0, log.read_text()


def test_the_anonymous_plan_is_the_demo_in_mdp_up_and_none_in_a_cluster() -> None:
    parser = build_parser()

    def plans_of_up(*args: str) -> PlanBook:
        return up.settings_from(parser.parse_args(["up", *args])).auth.plans

    assert plans_of_up().anonymous == "demo"
    # mdp up's own anonymous plan covers what its one feed brings, all of it
    demo = plans_of_up().get("demo")
    assert (demo.instruments, demo.history_days, demo.data) == (("*",), 36_500, "realtime")
    assert (
        plans_of_up("--anonymous", "demo").get("demo").instruments
        == load_plans().get("demo").instruments
    )  # named: as the plan file has it
    assert plans_of_up("--anonymous", "pro").anonymous == "pro"
    assert plans_of_up("--anonymous", "none").anonymous is None
    with pytest.raises(ValueError, match="--anonymous: the anonymous plan 'gold' is not among"):
        plans_of_up("--anonymous", "gold")
    serve = ["auth", "serve", "--database-url", "postgresql://127.0.0.1/x"]
    assert auth_command._settings(parser.parse_args(serve)).plans.anonymous is None
    told = parser.parse_args([*serve, "--anonymous", "demo"])
    assert auth_command._settings(told).plans.anonymous == "demo"


def set_plan(database: str, email: str, plan: str) -> None:
    """`mdp auth set-plan`, as an operator runs it, in a process of its own."""
    done = subprocess.run(
        [str(MDP), "auth", "set-plan", email, plan],
        capture_output=True, text=True, env=os.environ | {"DATABASE_URL": database},
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@needs_haproxy
async def test_trading_and_the_main_api_run_behind_the_edge(migrated_database: str) -> None:
    async with running_platform(settings_of(migrated_database)) as platform:
        assert platform.chart_url is not None
        public = platform.chart_url.rstrip("/")
        assert f"trading: {public}/trading/v1" in printed(platform)
        assert f"main-api: {public}/api/v1" in printed(platform)
        order = {"client_order_id": "up-1", "instrument": "SYNTH:BTCUSD", "side": "buy",
                 "type": "limit", "quantity": "1", "price": "1"}  # fmt: skip
        async with httpx.AsyncClient(base_url=public, timeout=10) as client:
            credentials = {"email": "grace@example.org", "password": PASSWORD}
            assert (await client.post("/auth/v1/accounts", json=credentials)).status_code == 201
            free = (await client.post("/auth/v1/login", json=credentials)).json()["access_token"]
            bearer = {"Authorization": f"Bearer {free}"}
            refused = await client.post("/trading/v1/orders", json=order, headers=bearer)
            assert (refused.status_code, problem_code(refused)) == (403, "insufficient-scope")
            await asyncio.to_thread(set_plan, migrated_database, "grace@example.org", "pro")
            pro = (await client.post("/auth/v1/login", json=credentials)).json()["access_token"]
            bearer = {"Authorization": f"Bearer {pro}"}
            # the service answers: a market order is denied no-price until the paper venue
            # has seen a trade of the live feed, then buying-power (the account has no cash)
            code, attempt = "no-price", 0
            async with asyncio.timeout(30):
                while code == "no-price":
                    attempt += 1
                    market = {**order, "client_order_id": f"up-{attempt}", "type": "market"}
                    del market["price"]
                    await asyncio.sleep(0.3)
                    denied = await client.post("/trading/v1/orders", json=market, headers=bearer)
                    assert denied.status_code == 422, denied.text
                    code = denied.json()["code"]
            assert (code, denied.json()["parameter"]) == ("buying-power", "quantity")
            listed = await client.get("/trading/v1/orders", headers=bearer)
            assert listed.status_code == 200
            # the main API, through the edge, on the same token
            assert (await client.get("/api/v1/profile")).status_code == 401
            put = await client.put("/api/v1/profile", json={"time_zone": "Asia/Tokyo"},
                                   headers=bearer)  # fmt: skip
            assert put.status_code == 200, put.text
            profile = (await client.get("/api/v1/profile", headers=bearer)).json()["profile"]
            assert profile["time_zone"] == "Asia/Tokyo"
            # an instrument of the live feed, known to the platform once it has written it
            watchlist = {"name": "live", "instruments": ["SYNTH:BTCUSD"]}
            made = await client.post("/api/v1/watchlists", json=watchlist, headers=bearer)
            assert made.status_code == 201, made.text
