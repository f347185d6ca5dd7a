"""The example bot against ``mdp up``, both as processes, as a user runs them: ``mdp up``
(the helpers of ``tests/mdp/test_up_command.py``), an account on a plan that trades with an
API key of the trade scope, then ``examples/ma_cross.py`` on 1 s candles until it has traded
and been sent Ctrl-C. Its fills stream from the gateway's fills channel (or, told so, are
polled over HTTP); its position over HTTP equals the sum of its fills over HTTP, every fill it
printed is one of them, it stopped cleanly, and it never printed its key.

One ``mdp up`` serves both cases (a module's fixture: starting it is most of a case's time),
each with an account of its own; it must still stop cleanly at the end."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.mdp.test_up_command import GATEWAY, start, stop, wait_for_url
from tests.mdp.test_up_front import PASSWORD, set_plan

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "examples" / "ma_cross.py"
AUTH = re.compile(r"auth: (http://\S+)/auth")
TRADING = re.compile(r"trading: (http://\S+)/trading/v1")
FILL = re.compile(r"^fill (\S+) (buy|sell) (\S+) ", re.MULTILINE)
STARTUP_S = 90.0
TRADES_WITHIN_S = 120.0
D = Decimal


def wait_for(pattern: re.Pattern[str], process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        found = pattern.findall(log.read_text())
        if found:
            return str(found[-1])
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"no {pattern.pattern} within {STARTUP_S}s:\n{log.read_text()}")


@dataclass(frozen=True)
class Up:
    """A running ``mdp up``: its addresses, as it printed them."""

    database: str
    auth: str
    trading: str
    gateway: str


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """``mdp up`` on a fresh data folder, for the module's cases; stopped (cleanly) after."""
    # the private server's folder is made by mkdtemp, as test_up_command's: its user may enter it
    data_dir = Path(tempfile.mkdtemp(prefix="mdp-up-test-"))
    up_log = tmp_path_factory.mktemp("ma-cross-up") / "up.log"
    process = start(data_dir, up_log)
    try:
        database = wait_for_url(process, up_log, runs=1)
        trading = wait_for(TRADING, process, up_log)
        auth, gateway = wait_for(AUTH, process, up_log), wait_for(GATEWAY, process, up_log)
        yield Up(database, auth, trading, gateway)
        assert process.poll() is None, up_log.read_text()
    finally:
        try:
            stop(process, up_log)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)


def trading_key(auth: str, database: str, email: str) -> tuple[str, str]:
    """An account on the pro plan: its API key of the read and trade scopes, and a token."""
    with httpx.Client(base_url=auth, timeout=10) as client:
        credentials = {"email": email, "password": PASSWORD}
        assert client.post("/auth/v1/accounts", json=credentials).status_code == 201
        set_plan(database, email, "pro")
        token = client.post("/auth/v1/login", json=credentials).json()["access_token"]
        made = client.post(
            "/auth/v1/keys",
            json={"name": "ma-cross", "scopes": ["read", "trade"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201, made.text
        return str(made.json()["api_key"]), str(token)


def run_bot(
    auth: str, trading: str, gateway: str, key: str, fills: str, log: Path
) -> subprocess.Popen[bytes]:
    options = [
        "--url", auth, "--trading-url", trading, "--ws-url", gateway, "--interval", "1s",
        "--fast", "2", "--slow", "4", "--quantity", "0.001", "--max-position", "0.003",
        "--poll", "0.5", "--fills", fills,
    ]  # fmt: skip
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, str(BOT), *options],
            stdout=sink, stderr=subprocess.STDOUT, env=os.environ | {"MDP_API_KEY": key},
        )  # fmt: skip


def settled(trading: str, token: str) -> tuple[list[dict[str, object]], Decimal, Decimal]:
    """The fills over HTTP, their signed sum and the position, once the read models agree
    with themselves (the lists follow the log a few milliseconds behind)."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=trading, headers=headers, timeout=10) as client:
        while True:
            fills = client.get("/trading/v1/fills", params={"limit": "1000"}).json()["fills"]
            total = sum(
                (
                    D(f["fill"]["quantity"]) * (1 if f["fill"]["side"] == "buy" else -1)
                    for f in fills
                ),
                D(0),
            )
            positions = client.get("/trading/v1/positions").json()["positions"]
            held = {p["position"]["instrument"]: D(p["position"]["quantity"]) for p in positions}
            position = held.get("SYNTH:BTCUSD", D(0))
            if position == total or time.monotonic() > deadline:
                return fills, total, position
            time.sleep(0.2)


@pytest.mark.parametrize(
    ("fills", "told"),
    [
        ("auto", "fills: streaming from the gateway's fills channel"),
        ("poll", "fills: polling GET /trading/v1/fills (--fills poll)"),
    ],
)
def test_the_example_bot_trades_on_paper_against_mdp_up(
    up: Up, tmp_path: Path, fills: str, told: str
) -> None:
    bot_log = tmp_path / "bot.log"
    trading = up.trading
    key, token = trading_key(up.auth, up.database, f"bot-{fills}@example.org")
    bot = None
    try:
        bot = run_bot(up.auth, trading, up.gateway, key, fills, bot_log)
        deadline = time.monotonic() + TRADES_WITHIN_S
        while len(FILL.findall(bot_log.read_text())) < 2:
            assert bot.poll() is None, bot_log.read_text()
            assert time.monotonic() < deadline, bot_log.read_text()
            time.sleep(0.2)
        bot.send_signal(signal.SIGINT)  # Ctrl-C
        assert bot.wait(timeout=30) == 0, bot_log.read_text()
        listed, total, position = settled(trading, token)
    finally:
        if bot is not None and bot.poll() is None:
            bot.kill()
            bot.wait(timeout=30)
    output = bot_log.read_text()
    assert key not in output
    assert key.split(".")[-1] not in output
    assert "Traceback" not in output
    assert "deposited 100000 USD" in output
    assert told in output
    assert re.search(r"^order \S+ buy 0.001 ", output, re.MULTILINE), output
    assert output.rstrip().splitlines()[-1].startswith("stopped: ")
    assert listed, output
    assert position == total, (position, total, output)
    assert D(0) <= total <= D("0.003")  # the position limit; spot: never short
    printed = {fill_id for fill_id, _side, _quantity in FILL.findall(output)}
    assert printed <= {str(f["fill"]["fill_id"]) for f in listed}  # type: ignore[index]
