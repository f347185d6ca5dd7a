"""``mdp gateway``: its options become settings; it serves until told to stop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from core.intervals import Interval
from core.secrets import DatabaseUrl
from machine import free_port
from mdp.commands import gateway as command
from mdp.common_options import EXIT_BAD_INPUT
from streams.memory import MemoryBus
from tests.support.tokens import expired, issue, jwks
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
    assert command.run(parse("--interval", "5 minutes")) == EXIT_BAD_INPUT
    assert "mdp gateway: error: bad interval" in capsys.readouterr().err
    assert command.run(parse("--gap-notices", "0")) == EXIT_BAD_INPUT
    assert "mdp gateway: error: gap_notices must be positive, got 0" in capsys.readouterr().err
    assert command.run(parse("--allowed-origin", "evil.example")) == EXIT_BAD_INPUT
    assert "mdp gateway: error: allowed origin 'evil.example' is not" in capsys.readouterr().err
    assert command.run(parse("--max-connections-per-ip", "-1")) == EXIT_BAD_INPUT
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


def test_token_options_become_token_settings() -> None:
    plain = command.tokens_from(parse())
    assert (plain.key_cache(), plain.anonymous) == (None, None)  # embedded: no key set, no plan
    assert command.settings_from(parse()).allow_anonymous
    url = "http://127.0.0.1:1/jwks.json"
    checked = parse("--jwks-url", url)
    assert command.tokens_from(checked).jwks_url == url
    assert command.tokens_from(checked).anonymous is None  # cluster mode: a token is required
    assert not command.settings_from(checked).allow_anonymous
    demo = parse("--jwks-url", url, "--anonymous", "demo", "--audience", "other")
    claims = command.tokens_from(demo).anonymous
    assert claims is not None
    assert claims.plan == "demo"
    assert command.tokens_from(demo).audience == "other"
    assert command.settings_from(demo).allow_anonymous
    assert command.settings_from(parse("--auth-timeout", "2.5")).auth_timeout == 2.5


def test_bad_token_options_exit_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://127.0.0.1:1/jwks.json"
    assert command.run(parse("--jwks-url", url, "--anonymous", "gold")) == EXIT_BAD_INPUT
    assert "mdp gateway: error: --anonymous: there is no plan 'gold'" in capsys.readouterr().err
    assert command.run(parse("--anonymous", "demo")) == EXIT_BAD_INPUT
    assert "--anonymous needs --jwks-url" in capsys.readouterr().err
    assert command.run(parse("--auth-timeout", "0")) == EXIT_BAD_INPUT


@contextlib.asynccontextmanager
async def jwks_server() -> AsyncIterator[tuple[str, asyncio.Server]]:
    """The test key set over HTTP, as the auth service publishes it."""
    body = jwks()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        writer.write(head.encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/auth/.well-known/jwks.json", server
    finally:
        server.close()


async def test_the_gateway_checks_tokens_on_the_cached_key_set_while_the_auth_service_is_down() -> (
    None
):
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws?token="
    async with jwks_server() as (jwks_url, server):
        args = parse("--port", str(port), "--jwks-url", jwks_url)
        settings, tokens = command.settings_from(args), command.tokens_from(args)
        stop = asyncio.Event()
        serving = asyncio.create_task(
            command.serve(settings, MemoryBus(), None, stop, tokens=tokens)
        )
        try:
            for _ in range(100):  # the gateway listens once it has read the key set
                with contextlib.suppress(OSError):
                    async with connect(url + issue(), open_timeout=TIMEOUT):
                        break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the gateway never listened")
            server.close()  # the auth service goes away
            await server.wait_closed()
            async with connect(url + issue(plan="free"), open_timeout=TIMEOUT) as ws:
                await ws.send(json.dumps({"op": "ping", "id": 1}))
                pong = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                assert pong == {"type": "pong", "id": 1}
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url + expired(), open_timeout=TIMEOUT):
                    pass
            assert refused.value.response.status_code == 401
        finally:
            stop.set()
            await asyncio.wait_for(serving, TIMEOUT)


@pytest.mark.parametrize(
    ("service", "default_schema"), [("trading", "trading_read"), ("main_api", "main_api")]
)
def test_the_database_options_name_where_private_channels_are_read(
    monkeypatch: pytest.MonkeyPatch, service: str, default_schema: str
) -> None:
    variable, option = f"{service.upper()}_DATABASE_URL", service.replace("_", "-")
    monkeypatch.delenv(variable, raising=False)
    plain = vars(parse())
    assert (plain[f"{service}_database_url"], plain[f"{service}_schema"]) == (None, default_schema)
    url = "postgresql://u@db/x"
    given = vars(parse(f"--{option}-database-url", url, f"--{option}-schema", "s"))
    assert given[f"{service}_database_url"].reveal() == url
    assert given[f"{service}_schema"] == "s"
    monkeypatch.setenv(variable, "postgresql://u@elsewhere/x")
    assert vars(parse())[f"{service}_database_url"].reveal() == "postgresql://u@elsewhere/x"
    with pytest.raises(SystemExit):
        parse(f"--{option}-schema", "no; schema")


async def test_serve_with_unreachable_trading_and_main_api_databases_still_listens() -> None:
    port = free_port()
    settings = command.settings_from(parse("--port", str(port)))
    stop = asyncio.Event()
    nowhere = command.ReadDatabase(DatabaseUrl(f"postgresql://u@127.0.0.1:{free_port()}/x"))
    serving = asyncio.create_task(
        command.serve(settings, MemoryBus(), None, stop, trading=nowhere, main_api=nowhere)
    )
    try:
        for _ in range(200):
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
        await asyncio.wait_for(serving, 3 * TIMEOUT)
