"""``/trading`` through a real HAProxy to the real trading service (real PostgreSQL): the
edge checks the trade claim first, then routes to the service, which checks the token again
and answers; without a trading upstream the edge answers 503."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import pytest

from auth.signing import SigningKey
from core.partitions import Partition
from edge.config import (
    EdgeSettings,
    TokenPolicy,
    Upstream,
    VerifyKey,
    partition_backend,
    trading_partitions,
)
from machine import free_port
from mdp.commands import edge as edge_command
from tests.support import tokens
from tests.trading.http.test_api import ALICE, ORDERS, Desk, database, desk, limit_buy, trader

from .conftest import (
    AUDIENCE,
    ISSUER,
    TIMEOUT,
    Stack,
    claims,
    eventually,
    get,
    haproxy_or_skip,
    keyed,
    sign,
)
from .test_config import haproxy_accepts, settings
from .test_edge import assert_problem

__all__ = ["database", "desk", "keyed"]  # the fixtures this module uses


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


def test_a_partitioned_trading_service_is_routed_by_the_token_s_account(tmp_path: Path) -> None:
    """One backend per partition, and the request's backend named by ``acct mod N`` as
    :func:`partition_backend` names them (the end to end test is
    ``tests/trading/http/test_partitions.py``)."""
    haproxy_or_skip()
    partitions = trading_partitions([("127.0.0.1:8030",), ("127.0.0.1:8031",), ("[::1]:8032",)])
    assert [u.name for u in partitions] == ["trading_p0of3", "trading_p1of3", "trading_p2of3"]
    text = haproxy_accepts(settings(tmp_path, trading=partitions), tmp_path)
    assert "jwt_payload_query('$.acct',int) if is_trading" in text
    assert "use_backend trading_p%[var(txn.acct),mod(3)]of3 if is_trading" in text
    assert "if is_trading !{ var(txn.acct) -m int ge 0 }" in text  # no account: 401, not chart
    for index, server in enumerate(("127.0.0.1:8030", "127.0.0.1:8031", "[::1]:8032")):
        backend = partition_backend(Partition(index, 3))
        assert f"backend {backend}\n" in text
        assert f"server {backend}1 {server} check" in text
    assert "backend trading\n" not in text


@pytest.mark.parametrize(
    ("trading", "message"),
    [
        ((Upstream("trading", ("127.0.0.1:1",)),), "2 to 64 partitions"),
        ((Upstream("trading_p0of2", ("127.0.0.1:1",)), Upstream("x", ("127.0.0.1:2",))),
         "partition 1/2 is misnamed"),
    ],
)  # fmt: skip
def test_partitions_the_routing_could_not_name_are_refused(
    tmp_path: Path, trading: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        settings(tmp_path, trading=trading)
    assert isinstance(settings(tmp_path), EdgeSettings)


def test_mdp_edge_takes_one_trading_instance_per_partition(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    edge_command.add_parser(parser.add_subparsers(dest="command"))
    base = ["edge", "--api", "127.0.0.1:8000", "--gateway", "127.0.0.1:8765"]

    def trading(*given: str) -> object:
        args = parser.parse_args([*base, *(arg for g in given for arg in ("--trading", g))])
        return edge_command.settings_from(args, tmp_path, None).trading

    made = trading("1/2=127.0.0.1:8032", "0/2=127.0.0.1:8031")  # in any order
    assert made == trading_partitions([("127.0.0.1:8031",), ("127.0.0.1:8032",)])
    assert trading("0/1=127.0.0.1:8030") == Upstream("trading", ("127.0.0.1:8030",))
    for given, told in [
        (("0/2=127.0.0.1:1",), "give each partition of 2 once: 0/2 1/2"),
        (("0/2=127.0.0.1:1", "0/2=127.0.0.1:2"), "partition 0/2 is given twice"),
        (("0/2=127.0.0.1:1", "1/3=127.0.0.1:2"), "give each partition"),
        (("0/2=127.0.0.1:1", "127.0.0.1:2"), "name its partition"),
        (("2/2=127.0.0.1:1",), "the index is 0 to N-1"),
        (("x=127.0.0.1:1",), "is not a partition"),
        (("0/2=localhost", "1/2=127.0.0.1:2"), "is not host:port"),
    ]:
        with pytest.raises(ValueError, match=told):
            trading(*given)


async def test_a_partitioned_route_needs_the_token_s_account(
    keyed: tuple[Stack, SigningKey],
) -> None:
    """A trading token without an ``acct`` (or a negative one) is refused at the edge (it would
    match no partition's backend and fall through to the chart page, the echo service here);
    any other goes to a partition, 503 while that partition has no server up."""
    stack, key = keyed
    down = [(f"127.0.0.1:{free_port()}",), (f"127.0.0.1:{free_port()}",)]
    await stack.reload(trading=trading_partitions(down))
    refused: tuple[object, ...] = (None, -1)
    for acct in refused:
        answer = await get(stack, ORDERS, sign(key, claims(trade=True, acct=acct)))
        assert_problem(answer, 401, "token-required")
    # HAProxy reads a text as the number 0: partition 0, whose service refuses the token
    routed: tuple[object, ...] = (7, 8, "x")
    for acct in routed:
        answer = await get(stack, ORDERS, sign(key, claims(trade=True, acct=acct)))
        assert_problem(answer, 503, "unavailable")
