"""``/trading`` through a real HAProxy to the real trading service (real PostgreSQL): the
edge checks the trade claim first, then routes to the service, which checks the token again
and answers; without a trading upstream the edge answers 503."""

from __future__ import annotations

from pathlib import Path

import httpx

from edge.config import TokenPolicy, Upstream, VerifyKey
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
