"""``mdp auth``: the administration commands on a real database, and ``serve`` as a real
uvicorn server."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from machine import stop_process
from mdp.cli import main
from tests.auth.conftest import PASSWORD, code_of, running


def _mdp(url: str, *args: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["auth", *args, "--database-url", url])


def test_accounts_keys_plans_and_revocations_from_the_command_line(
    migrated_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = migrated_database
    assert _mdp(url, "create-account", "ada@example.org", "--plan", "pro",
                stdin=PASSWORD + "\n", monkeypatch=monkeypatch) == 0  # fmt: skip
    assert "plan pro" in capsys.readouterr().out
    assert _mdp(url, "issue-key", "ada@example.org", "--name", "bot", "--scope", "trade",
                monkeypatch=monkeypatch) == 0  # fmt: skip
    printed = capsys.readouterr()
    api_key = printed.out.strip()
    assert "shown once" in printed.err
    assert api_key not in printed.err
    assert _mdp(url, "set-plan", "ada@example.org", "free", monkeypatch=monkeypatch) == 0
    assert _mdp(url, "rotate-keys", "--lead", "30", monkeypatch=monkeypatch) == 0
    assert "signing in 30s" in capsys.readouterr().out

    async def exchange() -> httpx.Response:
        async with running(url) as client:
            return await client.post("/auth/v1/token", json={"api_key": api_key})

    token = asyncio.run(exchange())
    assert token.status_code == 200
    assert token.json()["plan"] == "free"
    key_id = api_key.split(".")[0]
    assert _mdp(url, "revoke", "--key", key_id, monkeypatch=monkeypatch) == 0
    assert code_of(asyncio.run(exchange())) == "invalid-api-key"
    assert _mdp(url, "revoke", "--account", "ada@example.org", monkeypatch=monkeypatch) == 0
    assert "disabled" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["create-account", "a@x.org"], "short\n", 1, "a password has 10 to 256 characters"),
        (["create-account", "a@x.org", "--plan", "gold"], PASSWORD, 1, "there is no plan 'gold'"),
        (["issue-key", "nobody@x.org", "--name", "b"], "", 1, "there is no account nobody@x.org"),
        (["set-plan", "nobody@x.org", "pro"], "", 1, "there is no account nobody@x.org"),
        (["revoke", "--key", "k_00000000000000000000"], "", 1, "there is no key"),
    ],
)
def test_administration_errors_are_one_line(
    migrated_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    stdin: str,
    code: int,
    message: str,
) -> None:
    assert _mdp(migrated_database, *args, stdin=stdin, monkeypatch=monkeypatch) == code
    err = capsys.readouterr().err
    assert err.startswith("mdp auth: error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_an_unmigrated_database_is_refused_with_advice(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mdp(fresh_database, "rotate-keys", monkeypatch=monkeypatch) == 1
    assert "run `mdp db migrate` first" in capsys.readouterr().err


def test_no_database_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["auth", "rotate-keys"]) == 2
    assert "no database" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_answers_on_its_port_and_stops_on_sigterm(migrated_database: str) -> None:
    port = _free_port()
    env = os.environ | {"DATABASE_URL": migrated_database}
    server = subprocess.Popen(
        [sys.executable, "-m", "mdp.cli", "auth", "serve", "--port", str(port),
         "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                jwks = httpx.get(f"http://127.0.0.1:{port}/auth/.well-known/jwks.json")
                break
            except httpx.ConnectError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert jwks.status_code == 200
        assert jwks.json()["keys"][0]["alg"] == "ES256"
        signup = httpx.post(
            f"http://127.0.0.1:{port}/auth/v1/accounts",
            json={"email": "a@x.org", "password": PASSWORD},
        )
        assert signup.status_code == 201
    finally:
        stop_process(server)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0
    assert PASSWORD not in err.decode()


def test_an_anonymous_plan_that_does_not_exist_is_refused(
    migrated_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mdp(migrated_database, "serve", "--anonymous", "gold", monkeypatch=monkeypatch) == 2
    assert "the anonymous plan 'gold' is not among the plans" in capsys.readouterr().err
