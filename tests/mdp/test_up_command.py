"""``mdp up`` as a newcomer runs it: a fresh state folder, candles within seconds, a clean stop,
and a second start on the same data."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from websockets.asyncio.client import connect

from machine import stop_process
from mdp.cli import build_parser
from mdp.commands import up
from mdp.common_options import EXIT_BAD_INPUT

MDP = Path(sys.executable).parent / "mdp"
STARTUP = 60.0
URL = re.compile(r"database: (postgresql://\S+)")
CHART = re.compile(r"chart: (http://\S+)")
GATEWAY = re.compile(r"gateway: (ws://\S+)")
FREE_PORTS = ("--http-port", "0", "--ws-port", "0")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A folder of the private server's own (made by mkdtemp: the server user may enter it)."""
    folder = Path(tempfile.mkdtemp(prefix="mdp-up-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start(data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [*(str(MDP), "up", "--data-dir", str(data_dir), "--rate", "50"), *FREE_PORTS],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )


def wait_for_url(process: subprocess.Popen[bytes], log: Path, runs: int) -> str:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        urls = URL.findall(log.read_text())
        if len(urls) == runs:
            return str(urls[-1])
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"no database line within {STARTUP}s:\n{log.read_text()}")


def counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM ticks), (SELECT count(*) FROM candles)"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def wait_for_candles(url: str, more_than: int) -> tuple[int, int]:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        try:
            ticks, candles = counts(url)
        except psycopg.Error:  # the schema may still be migrating
            ticks, candles = 0, 0
        if candles > more_than:
            return ticks, candles
        time.sleep(0.2)
    raise AssertionError(f"no candles stored within {STARTUP}s")


def page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


async def first_live_candle(gateway: str) -> dict[str, object]:
    """Subscribe to one synthetic instrument's 1s candles; return the first live update."""
    async with asyncio.timeout(30), connect(gateway) as socket:
        request = {"op": "subscribe", "id": 1, "channel": "candles"}
        await socket.send(json.dumps(request | {"instrument": "SYNTH:BTCUSD", "interval": "1s"}))
        while True:
            message = json.loads(await socket.recv())
            if message["type"] == "candle":
                return dict(message["candle"])


def wait_for_chart(process: subprocess.Popen[bytes], log: Path) -> str:
    """What ``process`` has written to ``log`` once it has printed its chart's URL."""
    deadline = time.monotonic() + STARTUP
    while not CHART.search(text := log.read_text()):
        assert process.poll() is None, text
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    return text


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    assert stop_process(process, STARTUP) == 0, log.read_text()
    assert log.read_text().rstrip().endswith("stopped cleanly")


def test_up_stores_candles_stops_cleanly_and_starts_again_on_the_same_data(
    data_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "up.log"
    first = start(data_dir, log)
    try:
        url = wait_for_url(first, log, runs=1)
        ticks, candles = wait_for_candles(url, more_than=0)
        chart = CHART.findall(log.read_text())[-1]
        assert "<html" in page(chart).lower()
        assert "mdp-chart" in page(chart)
        live = asyncio.run(first_live_candle(GATEWAY.findall(log.read_text())[-1]))
        assert live["instrument"] == "SYNTH:BTCUSD"
    finally:
        stop(first, log)
    assert ticks > 0

    second = start(data_dir, log)
    try:
        url = wait_for_url(second, log, runs=2)
        kept_ticks, kept_candles = counts(url)
        assert kept_ticks >= ticks
        assert kept_candles >= candles
        more_ticks, _ = wait_for_candles(url, more_than=kept_candles)
    finally:
        stop(second, log)
    assert more_ticks > kept_ticks
    assert "starting a private PostgreSQL in" in log.read_text()


def with_password(url: str) -> tuple[str, str]:
    """``url`` with a password in it, and that password: its own, or one a trusting server
    (the tests' private one) ignores."""
    parts = urlsplit(url)
    if parts.password:
        return url, parts.password
    secret = f"secret-{os.getpid()}-pw"
    netloc = f"{parts.username or 'postgres'}:{secret}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), secret


def test_up_never_prints_the_database_password(migrated_database: str, tmp_path: Path) -> None:
    url, secret = with_password(migrated_database)
    log = tmp_path / "up.log"
    env = os.environ | {"DATABASE_URL": url}
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(MDP), "up", "--rate", "50", *FREE_PORTS], stdout=sink, stderr=sink, env=env
        )
    try:
        wait_for_chart(process, log)
    finally:
        stop(process, log)
    text = log.read_text()
    assert secret not in text
    assert re.search(r"^database: postgresql://\w+:\*\*\*@", text, re.MULTILINE), text


def test_up_on_an_unreachable_database_fails_in_one_line_without_the_password(
    tmp_path: Path,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://root:secretpw@127.0.0.1:{port}/x"
    done = subprocess.run(
        [str(MDP), "up", "--database-url", url, *FREE_PORTS],
        capture_output=True,
        text=True,
        timeout=STARTUP,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "secretpw" not in output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("mdp up: error:")]
    assert errors == [line for line in output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1
    assert errors[0].startswith(
        f"mdp up: error: cannot use the database at postgresql://root:***@127.0.0.1:{port}/x: "
    )


def parse_up(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_mdp_up_adds_allowed_origins_to_the_charts_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MDP_ALLOWED_ORIGINS", raising=False)  # the caller's own must not count
    assert up.settings_from(parse_up("up")).allowed_origins == ()
    given = parse_up("up", "--allowed-origin", "https://charts.example.com")
    assert up.settings_from(given).allowed_origins == ("https://charts.example.com",)
    monkeypatch.setenv("MDP_ALLOWED_ORIGINS", "https://a.example")
    assert up.settings_from(parse_up("up")).allowed_origins == ("https://a.example",)
    assert up.run(parse_up("up", "--allowed-origin", "a.example")) == EXIT_BAD_INPUT
