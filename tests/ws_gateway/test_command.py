"""``mdp gateway``: its options become settings; it serves until told to stop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.client import connect

from core.intervals import Interval
from machine import free_port
from mdp.commands import gateway as command
from streams.memory import MemoryBus
from ws_gateway import GatewaySettings
from ws_gateway.admission import LOOPBACK_ORIGINS

from .harness import TIMEOUT


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    return parser.parse_args(["gateway", *argv])


def test_options_become_settings() -> None:
    args = parse(
        "--port", "0", "--interval", "5m", "--interval", "1m", "--no-anonymous",
        "--gap-notices", "16",
    )  # fmt: skip
    settings = command.settings_from(args)
    assert settings.port == 0
    assert settings.host == "127.0.0.1"
    assert settings.intervals == (Interval.parse("1m"), Interval.parse("5m"))
    assert not settings.allow_anonymous
    assert settings.gap_notices == 16
    assert command.settings_from(parse()).gap_notices == GatewaySettings().gap_notices
    assert args.run is command.run
    assert args.bus == "memory"


def test_allowed_origins_and_the_connection_cap_come_from_options_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = command.settings_from(parse())
    assert default.allowed_origins == LOOPBACK_ORIGINS
    assert default.max_connections_per_address == GatewaySettings().max_connections_per_address
    monkeypatch.setenv("MDP_ALLOWED_ORIGINS", "https://a.example, https://b.example:8443")
    assert command.settings_from(parse()).allowed_origins == (
        "https://a.example",
        "https://b.example:8443",
    )
    given = parse("--allowed-origin", "https://c.example", "--max-connections-per-ip", "5")
    settings = command.settings_from(given)  # the option wins over the environment
    assert settings.allowed_origins == ("https://c.example",)
    assert settings.max_connections_per_address == 5
    assert command.settings_from(parse("--allowed-origin", "*")).allowed_origins == ("*",)


def test_bad_options_exit_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.run(parse("--interval", "5 minutes")) == command.EXIT_BAD_INPUT
    assert "mdp gateway: error: bad interval" in capsys.readouterr().err
    assert command.run(parse("--gap-notices", "0")) == command.EXIT_BAD_INPUT
    assert "mdp gateway: error: gap_notices must be positive, got 0" in capsys.readouterr().err
    assert command.run(parse("--allowed-origin", "evil.example")) == command.EXIT_BAD_INPUT
    assert "mdp gateway: error: allowed origin 'evil.example' is not" in capsys.readouterr().err
    assert command.run(parse("--max-connections-per-ip", "-1")) == command.EXIT_BAD_INPUT
    assert "max_connections_per_address must not be negative" in capsys.readouterr().err


async def test_serve_listens_until_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    settings = command.settings_from(parse("--port", str(port)))
    stop = asyncio.Event()
    serving = asyncio.create_task(command.serve(settings, MemoryBus(), None, stop))
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                async with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=TIMEOUT) as ws:
                    await ws.send(json.dumps({"op": "ping", "id": 1}))
                    pong = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                    assert pong == {"type": "pong", "id": 1}
                    break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the gateway never listened")
    finally:
        stop.set()
        await asyncio.wait_for(serving, TIMEOUT)
    err = capsys.readouterr().err
    assert f"listening on ws://127.0.0.1:{port}/ws" in err
    assert "stopped" in err
