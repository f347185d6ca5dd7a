"""``mdp api``: serves the history API from the database it is given, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from machine import free_port
from storage import PostgresStore
from tests.charting.data import INSTRUMENT, series

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
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_command_needs_a_database() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mdp.commands.api", "--database-url", ""],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "DATABASE_URL" in done.stderr
