"""Issue 17's check that no secret reaches the logs: a whole ``mdp up`` (auth, edge, history
API, gateway, main API, trading) at the debug level, with an account signed up and logged in,
its refresh token used, an API key issued and used over HTTP and WebSocket, and refusals on
the way; then every byte the run wrote to stdout and stderr is searched for every credential
(``tests.support.leaks``; ``tests/telemetry/test_logs.py`` shows that it finds a planted one)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from machine import stop_process
from tests.mdp.test_up_command import (
    CHART,
    GATEWAY,
    MDP,
    STARTUP,
    wait_for_chart,
    with_password,
)
from tests.mdp.test_up_front import AUTH
from tests.support.leaks import leaks

PASSWORD = "correct horse: battery staple"  # the test account's
EMAIL = "grace@example.org"
EDGE = re.compile(r"^edge: http", re.MULTILINE)


@contextlib.contextmanager
def running_up(database: str, log: Path) -> Iterator[dict[str, str]]:
    """``mdp up`` on ``database`` for the block (its printed URLs by name: ``chart``,
    ``gateway``, ``auth`` and, with the edge, ``edge``), every byte it writes in ``log``;
    stopped with SIGTERM after the block, which must end it cleanly."""
    env = os.environ | {"DATABASE_URL": database}
    command = [str(MDP), "up", "--log-level", "debug", "--history-hours", "0", "--rate", "20",
               "--http-port", "0", "--ws-port", "0"]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        text = wait_for_chart(process, log)
        urls = {
            "chart": CHART.findall(text)[0].rstrip("/"),
            "gateway": GATEWAY.findall(text)[0],
            "auth": AUTH.findall(text)[0],
        }
        if EDGE.search(text):
            urls["edge"] = urls["chart"]
        yield urls
    finally:
        code = stop_process(process, STARTUP)
    assert code == 0, log.read_text()
    assert "stopped cleanly" in log.read_text()  # debug records may follow it


async def use_every_credential(urls: dict[str, str]) -> dict[str, str]:
    """Sign up, log in, refresh, issue a key and use it (HTTP and WebSocket), with refusals
    on the way; the credentials seen, by name."""
    auth = urls.get("edge", urls["auth"])  # through the edge when it runs
    seen = {"account password": PASSWORD}
    async with httpx.AsyncClient(timeout=10) as http:
        credentials = {"email": EMAIL, "password": PASSWORD}
        assert (await http.post(f"{auth}/auth/v1/accounts", json=credentials)).status_code == 201
        wrong = await http.post(
            f"{auth}/auth/v1/login", json={"email": EMAIL, "password": PASSWORD[::-1]}
        )
        assert wrong.status_code == 401
        login = (await http.post(f"{auth}/auth/v1/login", json=credentials)).json()
        seen |= {"access token": login["access_token"], "refresh token": login["refresh_token"]}
        renewed = await http.post(
            f"{auth}/auth/v1/refresh", json={"refresh_token": login["refresh_token"]}
        )
        assert renewed.status_code == 200
        pair = renewed.json()
        seen |= {
            "refreshed access token": pair["access_token"],
            "refreshed refresh token": pair["refresh_token"],
        }
        replayed = await http.post(  # a refresh token used twice: refused, its family ended
            f"{auth}/auth/v1/refresh", json={"refresh_token": login["refresh_token"]}
        )
        assert replayed.status_code == 401
        login = (await http.post(f"{auth}/auth/v1/login", json=credentials)).json()
        owner = {"Authorization": f"Bearer {login['access_token']}"}
        seen["second access token"] = login["access_token"]
        made = await http.post(
            f"{auth}/auth/v1/keys", json={"name": "bot", "scopes": ["read"]}, headers=owner
        )
        assert made.status_code == 201, made.text
        api_key = made.json()["api_key"]
        seen |= {"API key": api_key, "API key secret": api_key.partition(".")[2]}
        bad_key = f"{api_key.partition('.')[0]}.{'x' * 43}"
        refused = await http.post(f"{auth}/auth/v1/token", json={"api_key": bad_key})
        assert refused.status_code == 401
        exchanged = await http.post(f"{auth}/auth/v1/token", json={"api_key": api_key})
        assert exchanged.status_code == 200, exchanged.text
        bot_token = exchanged.json()["access_token"]
        seen["key's access token"] = bot_token
        bot = {"Authorization": f"Bearer {bot_token}"}
        history = await http.get(f"{urls['chart']}/v1/instruments", headers=bot)
        assert history.status_code == 200
        forged = {"Authorization": f"Bearer {bot_token[:-4]}AAAA"}
        assert (await http.get(f"{urls['chart']}/v1/instruments", headers=forged)).is_error
        query = f"?token={quote(bot_token)}&api_key={quote(api_key)}"
        assert (await http.get(f"{urls['chart']}/v1/nowhere{query}")).is_error
    async with connect(urls["gateway"]) as socket:
        await socket.send(json.dumps({"op": "auth", "id": 1, "token": bot_token}))
        assert json.loads(await socket.recv())["type"] == "authenticated"
        subscribe = {"op": "subscribe", "id": 2, "channel": "candles", "interval": "1m"}
        await socket.send(json.dumps(subscribe | {"instrument": "SYNTH:BTCUSD"}))
        await socket.recv()
    with pytest.raises(InvalidStatus):  # not a token: refused at the handshake
        async with connect(f"{urls['gateway']}?token={quote(api_key)}"):
            pass
    return seen


async def test_no_credential_appears_in_a_whole_runs_output(
    migrated_database: str, tmp_path: Path
) -> None:
    database, database_password = with_password(migrated_database)
    log = tmp_path / "up.log"
    with running_up(database, log) as urls:
        seen = await use_every_credential(urls)
    seen["database password"] = database_password
    output = log.read_text()
    assert leaks(output, seen) == [], output
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert records, output  # the log records are JSON lines (stderr is not a terminal)
    assert {record["service"] for record in records} == {"up"}
