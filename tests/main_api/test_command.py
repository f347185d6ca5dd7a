"""``mdp main-api`` as a process (real PostgreSQL): it serves ``/api/v1`` with tokens checked
against the key set at ``--jwks-url``, checks instruments against the platform's database,
and stops on SIGTERM; without a key set or a database it refuses to start."""

from __future__ import annotations

import subprocess
import sys

import httpx
import psycopg

from machine import free_port
from tests.main_api.conftest import ALICE, token
from tests.trading.http.test_command import REPO, key_server, started, stopped

__all__ = ["key_server"]  # the fixture


def test_the_command_serves_the_main_api(migrated_database: str, key_server: str) -> None:
    with psycopg.connect(migrated_database, autocommit=True) as conn:
        conn.execute("INSERT INTO instruments (instrument) VALUES ('SYNTH:BTCUSD')")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "mdp.commands.main_api", "--database-url", migrated_database,
        "--port", str(port), "--jwks-url", key_server, "--schema", "main_api_cmd",
    ]  # fmt: skip
    process = started(command, base)
    try:
        api = f"{base}/api/v1"
        assert httpx.get(f"{api}/profile").status_code == 401
        alice = {"Authorization": f"Bearer {token(ALICE)}"}
        body = {"name": "w", "instruments": ["SYNTH:BTCUSD"]}
        made = httpx.post(f"{api}/watchlists", json=body, headers=alice)
        assert made.status_code == 201, made.text
        unknown = httpx.post(f"{api}/watchlists", json={"name": "x", "instruments": ["SYNTH:NO"]},
                             headers=alice)  # fmt: skip
        assert unknown.status_code == 422
        assert unknown.json()["code"] == "unknown-instrument"
        assert stopped(process) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_command_needs_a_key_set_and_a_database(fresh_database: str) -> None:
    for extra, told in ((["--database-url", fresh_database], "--jwks-url"), ([], "DATABASE_URL")):
        done = subprocess.run(
            [sys.executable, "-m", "mdp.commands.main_api", *extra],
            cwd=REPO, capture_output=True, text=True, check=False,
            env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert told in done.stderr
