"""``mdp main-api`` as a process (real PostgreSQL): it serves ``/api/v1`` with tokens checked
against the key set at ``--jwks-url``, checks instruments against the platform's database,
and stops on SIGTERM; without a key set or a database it refuses to start."""

from __future__ import annotations

import argparse
import subprocess
import sys

import httpx
import psycopg
import pytest

from machine import free_port, stop_process
from mdp.commands import main_api as main_api_command
from mdp.commands.main_api import webhook_settings
from tests.main_api.conftest import ALICE, token
from tests.trading.http.test_command import REPO, key_server, started

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
        assert stop_process(process) == 0
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


def test_the_webhook_retention_options_set_how_long_deliveries_are_kept() -> None:
    parser = argparse.ArgumentParser(prog="mdp", exit_on_error=False)
    main_api_command.add_parser(parser.add_subparsers(dest="command"))
    given = parser.parse_args(["main-api"])
    assert (webhook_settings(given).keep_delivered_s, webhook_settings(given).keep_dead_s) == (
        7 * 86_400, 30 * 86_400
    )  # fmt: skip
    args = ["main-api", "--webhook-keep-delivered", "0.5", "--webhook-keep-dead", "90"]
    chosen = webhook_settings(parser.parse_args(args))
    assert (chosen.keep_delivered_s, chosen.keep_dead_s) == (43_200, 90 * 86_400)
    for bad in ("0", "-1", "x", "3651"):
        with pytest.raises(argparse.ArgumentTypeError):
            main_api_command.keep_days(bad)
