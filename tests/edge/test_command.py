"""``mdp edge``: HAProxy in front of running services, reloaded on SIGHUP, stopped on SIGTERM
with its HAProxy."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from machine import free_port

from .conftest import TIMEOUT, Stack, eventually

REPO = Path(__file__).resolve().parents[2]


async def test_the_command_routes_reloads_and_stops(stack: Stack, tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    keys = tmp_path / "keys"
    keys.mkdir()
    api = f"127.0.0.1:{stack.api_port}"
    command = [
        sys.executable, "-m", "mdp.cli", "edge", "--port", str(port), "--admin-port", str(admin),
        "--api", api, "--gateway", f"127.0.0.1:{stack.gateway.port}", "--keys", str(keys),
    ]  # fmt: skip
    env = os.environ | {"XDG_STATE_HOME": str(tmp_path / "state")}
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        first = await asyncio.to_thread(process.stderr.readline)
        assert first.strip() == f"mdp edge: listening on http://127.0.0.1:{port}"
        metrics = await asyncio.to_thread(process.stderr.readline)
        assert metrics.strip() == f"metrics: http://127.0.0.1:{admin}/metrics"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as edge:
            assert (await edge.get("/v1/instruments")).status_code == 200
            # a key that is not a key: the reload is refused and the edge keeps serving
            (keys / "k1.pem").write_text("not a key\n")
            process.send_signal(signal.SIGHUP)
            refused = await asyncio.to_thread(process.stderr.readline)
            assert refused.startswith("mdp edge: error: not reloaded, still serving as before")
            assert (await edge.get("/v1/instruments")).status_code == 200
            (keys / "k1.pem").unlink()
            process.send_signal(signal.SIGHUP)
            reloaded = await asyncio.to_thread(process.stderr.readline)
            assert reloaded.strip() == "mdp edge: reloaded"
            process.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(process.wait, 30) == 0

            async def closed() -> bool:
                try:
                    await edge.get("/v1/instruments")
                except httpx.TransportError:
                    return True
                return False

            await eventually(closed)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_the_command_refuses_a_missing_key_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mdp.cli", "edge", "--api", "127.0.0.1:1", "--gateway",
         "127.0.0.1:2", "--keys", str(tmp_path / "none")],
        cwd=REPO, capture_output=True, text=True, check=False,
        env=os.environ | {"XDG_STATE_HOME": str(tmp_path / "state")},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == f"mdp edge: error: --keys {tmp_path / 'none'}: no such folder"
