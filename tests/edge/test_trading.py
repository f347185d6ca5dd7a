"""``/trading`` through a real HAProxy to the real trading service (real PostgreSQL): the
edge checks the trade claim first, then routes to the service, which checks the token again
and answers; without a trading upstream the edge answers 503."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx

from edge.config import TokenPolicy, Upstream, VerifyKey
from mdp.commands import edge as edge_command
from tests.support import tokens
from tests.trading.http.test_api import ALICE, ORDERS, Desk, database, desk, limit_buy, trader

from .conftest import AUDIENCE, ISSUER, TIMEOUT, Stack, eventually, get
from .test_edge import assert_problem

__all__ = ["database", "desk"]  # the fixtures this module uses


async def test_the_edge_routes_trading_to_the_trading_service(
    stack: Stack, desk: Desk, tmp_path: Path
) -> None:
    pem = tmp_path / f"{tokens.KEY.kid}.pem"
    pem.write_text(tokens.KEY.public_pem)
    trading = Upstream("trading", (desk.url.removeprefix("http://"),))
    policy = TokenPolicy(ISSUER, AUDIENCE, (VerifyKey(tokens.KEY.kid, pem),))
    await stack.reload(trading=trading, tokens=policy)
    alice = {"Authorization": f"Bearer {trader(ALICE)}"}

    async def routed() -> bool:
        return (await get(stack, ORDERS, trader(ALICE))).status_code == 200

    await eventually(routed)  # the backend's health check passed
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT, headers=alice) as edge:
        placed = await edge.post(ORDERS, json=limit_buy("edge-1"))
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order"]["order_id"]
        got = await edge.get(f"{ORDERS}/{order_id}")
        assert got.json()["order"] == placed.json()["order"]
        invalid = await edge.post(ORDERS, json=limit_buy("edge-2", price="-1"))
        assert (invalid.status_code, invalid.json()["parameter"]) == (422, "price")
    # the edge refuses before the service sees it
    assert_problem(await get(stack, ORDERS, None), 401, "token-required")
    read_only = tokens.key_token(account_id=ALICE, scopes=("read",))
    assert_problem(await get(stack, ORDERS, read_only), 403, "insufficient-scope")
    await stack.reload(trading=None)
    assert_problem(await get(stack, ORDERS, trader(ALICE)), 503, "not-available")


def test_mdp_edge_takes_the_trading_instances(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    edge_command.add_parser(parser.add_subparsers(dest="command"))
    base = ["edge", "--api", "127.0.0.1:8000", "--gateway", "127.0.0.1:8765"]
    given = parser.parse_args([*base, "--trading", "127.0.0.1:8030", "--trading", "[::1]:8031"])
    made = edge_command.settings_from(given, tmp_path, None).trading
    assert made == Upstream("trading", ("127.0.0.1:8030", "[::1]:8031"))
    assert edge_command.settings_from(parser.parse_args(base), tmp_path, None).trading is None
