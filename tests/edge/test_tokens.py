"""Tokens at the edge: a real HAProxy checks ES256 tokens the auth service's keys sign, and
names the principal to the backends; every other token is refused before a backend sees it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import jwt

from auth.signing import SigningKey, generate_key
from edge.config import RateLimits, TokenPolicy, VerifyKey

from .conftest import AUDIENCE, ISSUER, TIMEOUT, Stack, claims, eventually, get, sign
from .test_edge import assert_problem


async def test_a_valid_token_passes_and_names_its_principal(
    keyed: tuple[Stack, SigningKey],
) -> None:
    stack, key = keyed
    answer = await get(stack, "/echo", sign(key, claims()))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"principal": "account:7"}
    anonymous = await get(stack, "/echo", None)
    assert anonymous.json() == {"principal": None}  # the client's own header was dropped


async def test_every_other_token_is_refused(
    keyed: tuple[Stack, SigningKey], tmp_path: Path
) -> None:
    stack, key = keyed
    stranger = generate_key(int(time.time()))
    good = sign(key, claims())
    head, _, signature = good.split(".")
    forged_body = sign(key, claims(sub="account:1")).split(".")[1]
    refused = {
        "expired": sign(key, claims(exp=int(time.time()) - 5)),
        "another issuer": sign(key, claims(iss="someone-else")),
        "another audience": sign(key, claims(aud="another-service")),
        "no subject": sign(key, claims(sub=None)),
        "an unknown key": sign(stranger, claims()),
        "a known kid, another key": sign(stranger, claims(), kid=key.kid),
        "a tampered payload": f"{head}.{forged_body}.{signature}",
        "alg none": jwt.encode(claims(), "", algorithm="none", headers={"kid": key.kid}),
        "HS256": jwt.encode(claims(), "k" * 32, algorithm="HS256", headers={"kid": key.kid}),
        "not a JWT": "abc.def.ghi",
    }
    for case, token in refused.items():
        answer = await get(stack, "/echo", token)
        kind = "token-expired" if case == "expired" else "invalid-token"
        assert_problem(answer, 401, kind)
        assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"', case


async def test_a_websocket_token_may_come_in_the_query(keyed: tuple[Stack, SigningKey]) -> None:
    stack, _ = keyed
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        refused = await edge.get("/ws", params={"token": "abc.def.ghi"})
        assert_problem(refused, 401, "invalid-token")
        # only /ws reads the query: elsewhere a token there is just a parameter
        ignored = await edge.get("/echo", params={"token": "abc.def.ghi"})
        assert ignored.json() == {"principal": None}


async def test_a_principal_is_limited_at_its_plans_rate(keyed: tuple[Stack, SigningKey]) -> None:
    stack, key = keyed
    await stack.reload(limits=RateLimits(anonymous_per_address=60_000, window_s=1))
    plan = claims(rpm=300)  # 5 a second in the 1 s window
    first, other = sign(key, plan), sign(key, {**plan, "sub": "account:8"})
    first_answers = [await get(stack, "/echo", first) for _ in range(10)]
    other_answers = [await get(stack, "/echo", other) for _ in range(4)]
    assert 429 in [answer.status_code for answer in first_answers]
    # the same plan, another principal: its own budget, untouched by the first one's
    assert [answer.status_code for answer in other_answers] == [200] * 4
    limited = next(answer for answer in first_answers if answer.status_code == 429)
    assert_problem(limited, 429, "rate-limited")
    assert limited.headers["retry-after"] == "1"


async def test_a_rotated_key_is_taken_in_by_a_reload(
    keyed: tuple[Stack, SigningKey], tmp_path: Path
) -> None:
    stack, old = keyed
    new = generate_key(int(time.time()))
    (tmp_path / f"{new.kid}.pem").write_text(new.public_pem)
    assert (await get(stack, "/echo", sign(new, claims()))).status_code == 401
    both = tuple(VerifyKey(k.kid, tmp_path / f"{k.kid}.pem") for k in (old, new))
    await stack.reload(tokens=TokenPolicy(ISSUER, AUDIENCE, both))
    assert (await get(stack, "/echo", sign(new, claims()))).status_code == 200
    assert (await get(stack, "/echo", sign(old, claims()))).status_code == 200
    await stack.reload(tokens=TokenPolicy(ISSUER, AUDIENCE, both[1:]))
    assert (await get(stack, "/echo", sign(old, claims()))).status_code == 401


async def test_trading_needs_a_token_that_may_trade(keyed: tuple[Stack, SigningKey]) -> None:
    stack, key = keyed
    for path in ("/trading", "/trading/v1/orders"):
        anonymous = await get(stack, path, None)
        assert_problem(anonymous, 401, "token-required")
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert_problem(await get(stack, path, "abc.def.ghi"), 401, "invalid-token")
        for refused in (claims(trade=False), claims(), claims(trade="yes")):
            answer = await get(stack, path, sign(key, refused))
            assert_problem(answer, 403, "insufficient-scope")
            assert 'scope="trade"' in answer.headers["www-authenticate"]
        # a token that may trade gets as far as the service, which is not built yet
        assert_problem(await get(stack, path, sign(key, claims(trade=True))), 503, "not-available")
    # elsewhere the trade claim changes nothing
    assert (await get(stack, "/echo", sign(key, claims(trade=False)))).status_code == 200


async def test_the_access_log_is_json_without_tokens_or_cookies(
    keyed: tuple[Stack, SigningKey],
) -> None:
    stack, key = keyed
    token = sign(key, claims(sub="account:42"))
    secret_cookie = "session=c00k1e-s3cr3t"
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        bearer = {"Authorization": f"Bearer {token}", "Cookie": secret_cookie}
        assert (await edge.get("/echo", headers=bearer)).status_code == 200
        await edge.get("/ws", params={"token": token})  # not an upgrade: the gateway's 4xx
        await edge.get("/echo", params={"token": token, "q": 'a"b\\c'})

    def logged() -> list[dict[str, object]]:
        lines = stack.edge.log_file.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    await eventually(lambda: len(logged()) >= 3)
    text = stack.edge.log_file.read_text()
    for secret in (token, token.split(".")[2], "c00k1e-s3cr3t"):
        assert secret not in text
    entries = logged()
    assert {entry["path"] for entry in entries} >= {"/echo", "/ws"}
    assert any(entry["principal"] == "account:42" and entry["status"] == 200 for entry in entries)
