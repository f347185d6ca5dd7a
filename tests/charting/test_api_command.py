"""``mdp api``: serves the history API from the database it is given, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import http.server
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from machine import free_port, stop_process
from storage import PostgresStore
from tests.charting.data import INSTRUMENT, series
from tests.support import tokens

REPO = Path(__file__).resolve().parents[2]


def test_the_command_serves_the_api_until_terminated(migrated_database: str) -> None:
    async def stock() -> None:
        async with PostgresStore.open(migrated_database) as store:
            await store.write(candles=series(20))

    asyncio.run(stock())
    port = free_port()
    command = [
        sys.executable, "-m", "mdp.commands.api", "--database-url", migrated_database,
        "--port", str(port), "--interval", "1m", "--ws-url", "ws://127.0.0.1:1/ws",
        "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "mdp api exited early"
            try:
                found = httpx.get(f"{base}/v1/instruments", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "mdp api did not answer within 30 s"
                time.sleep(0.1)
        assert found.json()["instruments"][0]["instrument"] == INSTRUMENT
        assert found.json()["intervals"] == ["1m"]
        config = httpx.get(f"{base}/config.json").json()
        assert config == {"ws_url": "ws://127.0.0.1:1/ws", "api_base": "", "intervals": ["1m"]}
        rolled = httpx.get(
            f"{base}/v1/candles",
            params={"instrument": INSTRUMENT, "interval": "5m", "start": "2026-01-01"},
        )
        assert rolled.json()["rolled_up_from"] == "1m"
        assert stop_process(process) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("options", "told"),
    [
        (["--database-url", ""], "DATABASE_URL"),
        (  # revocations are read for the token checks: without a key set there are none
            ["--database-url", "postgresql://127.0.0.1:1/none", "--bus", "kafka"],
            "mdp api: error: --bus kafka reads revocations: give --jwks-url too",
        ),
    ],
)
def test_the_command_refuses_what_cannot_work(options: list[str], told: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mdp.commands.api", *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert told in done.stderr


class _KeySetHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = tokens.jwks()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_command_checks_tokens_with_the_key_set_and_an_anonymous_plan(
    migrated_database: str,
) -> None:
    async def stock() -> None:
        async with PostgresStore.open(migrated_database) as store:
            await store.write(candles=series(20))
            await store.write(candles=series(20, instrument="SYNTH:BTCUSD"))

    asyncio.run(stock())
    keys = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeySetHandler)
    threading.Thread(target=keys.serve_forever, daemon=True).start()
    port = free_port()
    command = [
        sys.executable, "-m", "mdp.commands.api", "--database-url", migrated_database,
        "--port", str(port), "--interval", "1m", "--log-level", "warning",
        "--jwks-url", f"http://127.0.0.1:{keys.server_port}/auth/.well-known/jwks.json",
        "--anonymous", "demo",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "mdp api exited early"
            try:
                listed = httpx.get(f"{base}/v1/instruments", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "mdp api did not answer within 30 s"
                time.sleep(0.1)
        assert [row["instrument"] for row in listed.json()["instruments"]] == ["SYNTH:BTCUSD"]
        query = {"instrument": INSTRUMENT, "interval": "1m", "start": "2026-01-01"}
        assert httpx.get(f"{base}/v1/candles", params=query).status_code == 403
        pro = {"Authorization": f"Bearer {tokens.issue(plan='pro')}"}
        assert httpx.get(f"{base}/v1/candles", params=query, headers=pro).status_code == 200
        forged = {"Authorization": f"Bearer {tokens.forged_signature()}"}
        refused = httpx.get(f"{base}/v1/candles", params=query, headers=forged)
        assert (refused.status_code, refused.json()["reason"]) == (401, "signature")
        assert stop_process(process) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        keys.shutdown()
        keys.server_close()


def test_an_anonymous_plan_needs_a_key_set_and_a_known_plan(migrated_database: str) -> None:
    base = [sys.executable, "-m", "mdp.commands.api", "--database-url", migrated_database]
    for extra, message in (
        (["--anonymous", "demo"], "--anonymous needs --jwks-url"),
        (["--jwks-url", "http://127.0.0.1:1/", "--anonymous", "gold"], "no plan 'gold'"),
    ):
        done = subprocess.run(
            base + extra, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2
        assert message in done.stderr
