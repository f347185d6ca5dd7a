"""The auth service through its HTTP routes on a real PostgreSQL: accounts, sessions,
refresh rotation and reuse, API keys, the JWKS, key rotation, bounded input."""

from __future__ import annotations

import asyncio

import httpx
import jwt
import pytest

from auth.settings import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from auth.throttle import LoginRates, Rate
from tests.auth.conftest import (
    PASSWORD,
    bearer,
    code_of,
    log_in,
    running,
    sign_up,
    with_settings,
)


async def _verify_with_jwks(client: httpx.AsyncClient, token: str) -> dict[str, object]:
    """Check ``token`` as another service would: with the published JWKS alone."""
    answer = await client.get("/auth/.well-known/jwks.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/jwk-set+json"
    jwks = jwt.PyJWKSet.from_dict(answer.json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(key for key in jwks.keys if key.key_id == kid)
    claims: dict[str, object] = jwt.decode(
        token, key.key, algorithms=["ES256"], audience=DEFAULT_AUDIENCE, issuer=DEFAULT_ISSUER
    )
    return claims


async def test_signup_then_login_gives_tokens_that_the_jwks_verifies(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post(
        "/auth/v1/accounts", json={"email": " Ada@Example.org", "password": PASSWORD}
    )
    assert answer.status_code == 201
    assert answer.json()["email"] == "ada@example.org"
    session = await log_in(client, "ADA@example.org")
    assert session["token_type"] == "Bearer"
    assert session["plan"] == "free"
    claims = await _verify_with_jwks(client, str(session["access_token"]))
    assert claims["sub"] == f"account:{answer.json()['account_id']}"
    assert claims["plan"] == "free"
    assert claims["delay"] == 900
    assert claims["scope"] == "read trade"
    assert claims["exp"] == claims["iat"] + session["expires_in"]  # type: ignore[operator]


async def test_a_second_signup_with_the_same_email_is_refused(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    again = await client.post(
        "/auth/v1/accounts", json={"email": "ADA@example.org", "password": PASSWORD}
    )
    assert (again.status_code, code_of(again)) == (409, "account-exists")


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    wrong = await client.post(
        "/auth/v1/login", json={"email": "ada@example.org", "password": PASSWORD + "!"}
    )
    unknown = await client.post(
        "/auth/v1/login", json={"email": "bob@example.org", "password": PASSWORD}
    )
    assert (wrong.status_code, code_of(wrong)) == (401, "invalid-credentials")
    assert wrong.json() == unknown.json()
    assert PASSWORD not in wrong.text


async def test_refresh_rotates_and_a_reused_token_revokes_the_whole_family(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    first = await log_in(client)
    second = await client.post("/auth/v1/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = await client.post("/auth/v1/refresh", json={"refresh_token": first["refresh_token"]})
    assert (reused.status_code, code_of(reused)) == (401, "refresh-token-reused")
    newest = await client.post(
        "/auth/v1/refresh", json={"refresh_token": second.json()["refresh_token"]}
    )
    assert (newest.status_code, code_of(newest)) == (401, "invalid-refresh-token")
    keys = await client.get("/auth/v1/keys", headers=bearer(second.json()))
    assert (keys.status_code, code_of(keys)) == (401, "invalid-token")  # its session ended
    other = await log_in(client)  # a new login is a new family
    assert (await client.get("/auth/v1/keys", headers=bearer(other))).status_code == 200


async def test_logout_ends_the_session(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    session = await log_in(client)
    out = await client.post("/auth/v1/logout", json={"refresh_token": session["refresh_token"]})
    assert out.status_code == 204
    after = await client.post("/auth/v1/refresh", json={"refresh_token": session["refresh_token"]})
    assert (after.status_code, code_of(after)) == (401, "invalid-refresh-token")
    unknown = await client.post("/auth/v1/refresh", json={"refresh_token": "x" * 43})
    assert (unknown.status_code, code_of(unknown)) == (401, "invalid-refresh-token")


async def test_api_keys_are_issued_listed_rotated_and_revoked(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    owner = bearer(await log_in(client))
    made = await client.post(
        "/auth/v1/keys", json={"name": "ci bot", "scopes": ["read"]}, headers=owner
    )
    assert made.status_code == 201
    key = made.json()
    api_key = key.pop("api_key")
    listed = (await client.get("/auth/v1/keys", headers=owner)).json()["keys"]
    assert listed == [key]
    assert api_key.split(".")[1] not in str(listed)

    token = await client.post("/auth/v1/token", json={"api_key": api_key})
    assert token.status_code == 200
    claims = await _verify_with_jwks(client, token.json()["access_token"])
    assert (claims["sub"], claims["kind"], claims["scope"], claims["trade"]) == (
        f"key:{key['key_id']}", "key", "read", False,
    )  # fmt: skip
    key_bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    refused = await client.get("/auth/v1/keys", headers=key_bearer)
    assert (refused.status_code, code_of(refused)) == (403, "account-token-required")

    rotated = await client.post(f"/auth/v1/keys/{key['key_id']}/rotate", headers=owner)
    assert rotated.status_code == 200
    new_key = rotated.json()["api_key"]
    assert new_key.split(".")[0] == key["key_id"]
    assert new_key != api_key
    old = await client.post("/auth/v1/token", json={"api_key": api_key})
    assert (old.status_code, code_of(old)) == (401, "invalid-api-key")
    assert (await client.post("/auth/v1/token", json={"api_key": new_key})).status_code == 200

    gone = await client.delete(f"/auth/v1/keys/{key['key_id']}", headers=owner)
    assert gone.status_code == 204
    revoked = await client.post("/auth/v1/token", json={"api_key": new_key})
    assert (revoked.status_code, code_of(revoked)) == (401, "invalid-api-key")
    listed = (await client.get("/auth/v1/keys", headers=owner)).json()["keys"]
    assert listed[0]["revoked"] is True


async def test_one_account_cannot_touch_anothers_keys(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    await sign_up(client, "bob@example.org")
    ada = bearer(await log_in(client))
    bob = bearer(await log_in(client, "bob@example.org"))
    made = await client.post("/auth/v1/keys", json={"name": "a", "scopes": ["read"]}, headers=ada)
    key_id = made.json()["key_id"]
    for answer in (
        await client.delete(f"/auth/v1/keys/{key_id}", headers=bob),
        await client.post(f"/auth/v1/keys/{key_id}/rotate", headers=bob),
    ):
        assert (answer.status_code, code_of(answer)) == (404, "not-found")
    assert (await client.get("/auth/v1/keys", headers=bob)).json()["keys"] == []


async def test_key_rotation_keeps_tokens_of_the_previous_key_valid(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    before = str((await log_in(client))["access_token"])
    old_kid = jwt.get_unverified_header(before)["kid"]
    new = await client.app.state.service.rotate_keys()  # type: ignore[attr-defined]
    after = str((await log_in(client))["access_token"])
    assert jwt.get_unverified_header(after)["kid"] == new.kid != old_kid
    published = {
        key["kid"] for key in (await client.get("/auth/.well-known/jwks.json")).json()["keys"]
    }
    assert published == {old_kid, new.kid}
    assert (await _verify_with_jwks(client, before))["sub"] == (
        await _verify_with_jwks(client, after)
    )["sub"]
    assert (
        await client.get("/auth/v1/keys", headers={"Authorization": f"Bearer {before}"})
    ).status_code == 200


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("headers", "content", "status", "code"),
    [
        ({"content-type": "text/plain"}, b"{}", 415, "unsupported-media-type"),
        (JSON, b"{not json", 400, "invalid-request"),
        (JSON, b'{"email": 1, "password": "x"}', 400, "invalid-request"),
        (JSON, b'{"email": "' + b"a" * 20_000 + b'"}', 413, "content-too-large"),
        (JSON, b'{"email": "' + b"a" * 400 + b'@x.org", "password": "p"}', 400, "invalid-request"),
        (JSON, b'{"email": "a@x.org", "password": "p", "admin": true}', 400, "invalid-request"),
    ],
)
async def test_hostile_bodies_are_refused_with_our_codes(
    client: httpx.AsyncClient, headers: dict[str, str], content: bytes, status: int, code: str
) -> None:
    answer = await client.post("/auth/v1/login", headers=headers, content=content)
    assert (answer.status_code, code_of(answer)) == (status, code)


async def test_a_short_password_is_refused_at_signup(client: httpx.AsyncClient) -> None:
    answer = await client.post("/auth/v1/accounts", json={"email": "a@x.org", "password": "short"})
    assert (answer.status_code, code_of(answer)) == (400, "invalid-request")
    assert "10 to 256 characters" in answer.json()["detail"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic abc", "Bearer not-a-jwt", "Bearer " + "a" * 5000],
)
async def test_key_routes_need_a_valid_account_token(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = await client.get("/auth/v1/keys", headers=headers)
    assert (answer.status_code, code_of(answer)) == (401, "invalid-token")


async def test_repeated_failed_logins_are_throttled(migrated_database: str) -> None:
    rates = LoginRates(per_account=Rate(3, 60.0), per_address=Rate(50, 1.0))
    async with running(migrated_database, with_settings(login_rates=rates)) as client:
        await sign_up(client)
        wrong = {"email": "ada@example.org", "password": "wrong password!"}
        codes = [code_of(await client.post("/auth/v1/login", json=wrong)) for _ in range(3)]
        assert codes == ["invalid-credentials"] * 3
        throttled = await client.post("/auth/v1/login", json=wrong | {"password": PASSWORD})
        assert (throttled.status_code, code_of(throttled)) == (429, "too-many-attempts")
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60


async def test_signup_can_be_off(migrated_database: str) -> None:
    async with running(migrated_database, with_settings(signup=False)) as client:
        answer = await client.post(
            "/auth/v1/accounts", json={"email": "a@x.org", "password": PASSWORD}
        )
        assert (answer.status_code, code_of(answer)) == (403, "signup-disabled")


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/auth/v1/nothing")
    assert (missing.status_code, code_of(missing)) == (404, "not-found")
    wrong = await client.get("/auth/v1/login")
    assert (wrong.status_code, code_of(wrong)) == (405, "method-not-allowed")


async def test_a_rotation_with_a_lead_publishes_the_new_key_before_it_signs(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    old_kid = jwt.get_unverified_header(str((await log_in(client))["access_token"]))["kid"]
    new = await client.app.state.service.rotate_keys(lead_s=3600)  # type: ignore[attr-defined]
    jwks = (await client.get("/auth/.well-known/jwks.json")).json()["keys"]
    assert {key["kid"] for key in jwks} == {old_kid, new.kid}
    still = str((await log_in(client))["access_token"])
    assert jwt.get_unverified_header(still)["kid"] == old_kid


async def test_the_plans_are_published_with_the_anonymous_one(client: httpx.AsyncClient) -> None:
    answer = await client.get("/auth/v1/plans")
    assert answer.status_code == 200
    body = answer.json()
    assert body["anonymous"] == "demo"
    assert body["plans"]["demo"]["instruments"] == "SYNTH:* BINANCE:BTCUSDT"
    assert body["plans"]["free"]["delay"] == 900


async def test_two_refreshes_racing_with_one_token_rotate_once_and_revoke_the_family(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    session = await log_in(client)
    body = {"refresh_token": session["refresh_token"]}
    answers = await asyncio.gather(*(client.post("/auth/v1/refresh", json=body) for _ in range(4)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 401, 401, 401]
    winner = next(answer for answer in answers if answer.status_code == 200)
    refused = sorted(code_of(answer) for answer in answers if answer.status_code == 401)
    # the first in takes the row lock and rotates; the next finds a spent token (a reuse)
    # and revokes the family; the rest find it revoked
    assert refused == ["invalid-refresh-token", "invalid-refresh-token", "refresh-token-reused"]
    after = await client.post(
        "/auth/v1/refresh", json={"refresh_token": winner.json()["refresh_token"]}
    )
    assert (after.status_code, code_of(after)) == (401, "invalid-refresh-token")
