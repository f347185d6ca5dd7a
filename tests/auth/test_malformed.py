"""Input PostgreSQL cannot store (a NUL) or a bug in a route: our problems, never a bare 500.

A NUL in a login's email or in a key id of a path reached the database, whose refusal
(``DataError``) came back as a text/plain 500 and a traceback in the log, for anyone to
repeat. Now such input is refused before the database with our codes, and any failure no
handler takes answers ``internal-error`` (``web.internal_errors``)."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.auth.conftest import PASSWORD, bearer, code_of, log_in, sign_up


@pytest.mark.parametrize("email", ["ada\x00@example.org", "ada@example.org\x00", "\x00"])
async def test_a_login_with_a_nul_in_the_email_is_invalid_credentials(
    client: httpx.AsyncClient, email: str, caplog: pytest.LogCaptureFixture
) -> None:
    await sign_up(client)
    answer = await client.post("/auth/v1/login", json={"email": email, "password": PASSWORD})
    assert (answer.status_code, code_of(answer)) == (401, "invalid-credentials")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_signup_with_a_nul_in_the_email_is_a_field_error(
    client: httpx.AsyncClient,
) -> None:
    body = {"email": "ada\x00@example.org", "password": PASSWORD}
    answer = await client.post("/auth/v1/accounts", json=body)
    assert (answer.status_code, code_of(answer)) == (400, "invalid-request")
    assert answer.json()["detail"] == "an email address has no control characters"


@pytest.mark.parametrize("key_id", ["k_%00", "k_0123456789abcdef012%00", "nope", "K_" + "a" * 20])
async def test_a_key_id_that_cannot_be_one_is_not_found(
    client: httpx.AsyncClient, key_id: str
) -> None:
    await sign_up(client)
    headers = bearer(await log_in(client))
    for answer in (
        await client.post(f"/auth/v1/keys/{key_id}/rotate", headers=headers),
        await client.delete(f"/auth/v1/keys/{key_id}", headers=headers),
    ):
        assert (answer.status_code, code_of(answer)) == (404, "not-found")
        assert "a key id looks like k_<20 hex>" in answer.json()["detail"]


async def test_a_failing_route_answers_internal_error_without_the_cause(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await sign_up(client)
    headers = bearer(await log_in(client))

    async def broken(account_id: int) -> object:
        raise RuntimeError("relation auth_api_keys: password=hunter2")

    service = client.app.state.service  # type: ignore[attr-defined]
    monkeypatch.setattr(service.store, "keys", broken)
    answer = await client.get("/auth/v1/keys", headers=headers)
    assert (answer.status_code, code_of(answer)) == (500, "internal-error")
    assert answer.headers["Cache-Control"] == "no-store"
    assert "hunter2" not in answer.text
    assert "RuntimeError" not in answer.text
    (logged,) = [record for record in caplog.records if record.exc_info is not None]
    assert "/auth/v1/keys" in logged.getMessage()
