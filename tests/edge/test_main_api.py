"""``/api`` through a real HAProxy to the real main API (real PostgreSQL): the edge checks the
token, then routes to the service, which checks it again and answers; without a main API
upstream the edge answers 503."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx

from edge.config import TokenPolicy, Upstream, VerifyKey
from mdp.commands import edge as edge_command
from tests.main_api.conftest import ALICE, Api, api, schema, token
from tests.support import tokens

from .conftest import AUDIENCE, ISSUER, TIMEOUT, Stack, eventually, get
from .test_edge import assert_problem

__all__ = ["api", "schema"]  # the fixtures this module uses

PROFILE = "/api/v1/profile"


async def test_the_edge_routes_api_to_the_main_api(stack: Stack, api: Api, tmp_path: Path) -> None:
    pem = tmp_path / f"{tokens.KEY.kid}.pem"
    pem.write_text(tokens.KEY.public_pem)
    main_api = Upstream("main-api", (api.url.removeprefix("http://"),))
    policy = TokenPolicy(ISSUER, AUDIENCE, (VerifyKey(tokens.KEY.kid, pem),))
    await stack.reload(main_api=main_api, tokens=policy)

    async def routed() -> bool:
        return (await get(stack, PROFILE, token(ALICE))).status_code == 200

    await eventually(routed)  # the backend's health check passed
    alice = {"Authorization": f"Bearer {token(ALICE)}"}
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT, headers=alice) as edge:
        put = await edge.put(PROFILE, json={"display_name": "Alice"})
        assert put.status_code == 200, put.text
        assert (await edge.get(PROFILE)).json()["profile"]["display_name"] == "Alice"
        bad = await edge.put(PROFILE, json={"time_zone": "Nowhere/Land"})
        assert (bad.status_code, bad.json()["parameter"]) == (422, "time_zone")
    # the service refuses a request without an account's token, through the edge too
    assert_problem(await get(stack, PROFILE, None), 401, "token-required")
    await stack.reload(main_api=None)
    assert_problem(await get(stack, PROFILE, token(ALICE)), 503, "not-available")


def test_mdp_edge_takes_the_main_api_instances(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    edge_command.add_parser(parser.add_subparsers(dest="command"))
    base = ["edge", "--api", "127.0.0.1:8000", "--gateway", "127.0.0.1:8765"]
    given = parser.parse_args([*base, "--main-api", "127.0.0.1:8040"])
    made = edge_command.settings_from(given, tmp_path, None).main_api
    assert made == Upstream("main-api", ("127.0.0.1:8040",))
    assert edge_command.settings_from(parser.parse_args(base), tmp_path, None).main_api is None
