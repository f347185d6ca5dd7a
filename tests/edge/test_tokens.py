"""Tokens at the edge: a real HAProxy checks ES256 tokens the auth service's keys sign, and
names the principal to the backends; every other token is refused before a backend sees it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from auth.signing import SigningKey, generate_key
from charting.server import serving
from edge.config import PRINCIPAL_HEADER, RateLimits, TokenPolicy, Upstream, VerifyKey

from .conftest import TIMEOUT, Stack
from .test_edge import assert_problem

ISSUER, AUDIENCE = "ganntec-auth", "ganntec"


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"principal": request.headers.get(PRINCIPAL_HEADER)})


async def _alive(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


ECHO = Starlette(routes=[Route("/healthz", _alive), Route("/echo", _echo)])


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "account:7", "iat": now, "nbf": now,
            "exp": now + 300, "rpm": 600}  # fmt: skip
    return {name: value for name, value in (base | changes).items() if value is not None}


def sign(key: SigningKey, payload: dict[str, Any], **headers: Any) -> str:
    private = key.private_pem.reveal().encode()
    return jwt.encode(payload, private, algorithm="ES256", headers={"kid": key.kid} | headers)


@pytest.fixture
async def keyed(stack: Stack, tmp_path: Path) -> AsyncIterator[tuple[Stack, SigningKey]]:
    """The stack with one current key at the edge, and the echo service behind ``/echo``."""
    key = generate_key(int(time.time()))
    pem = tmp_path / f"{key.kid}.pem"
    pem.write_text(key.public_pem)
    async with serving(ECHO) as echo:
        await stack.reload(
            chart=Upstream("echo", (f"127.0.0.1:{echo.port}",)),
            tokens=TokenPolicy(ISSUER, AUDIENCE, (VerifyKey(key.kid, pem),)),
        )
        yield stack, key


async def get(stack: Stack, path: str, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        return await edge.get(path, headers=headers | {PRINCIPAL_HEADER: "account:1"})


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
    slow, fast = sign(key, claims(rpm=300)), sign(key, claims(sub="account:8", rpm=60_000))
    slow_answers = [await get(stack, "/echo", slow) for _ in range(10)]
    fast_answers = [await get(stack, "/echo", fast) for _ in range(10)]
    assert 429 in [answer.status_code for answer in slow_answers]
    assert [answer.status_code for answer in fast_answers] == [200] * 10
    limited = next(answer for answer in slow_answers if answer.status_code == 429)
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
