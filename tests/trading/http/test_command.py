"""``mdp trading serve`` as a process (real PostgreSQL, the memory bus): it serves the API
with tokens checked against the key set at ``--jwks-url``, its read models follow the log,
it stops on SIGTERM, and after a kill -9 a restart resumes the open order; paper deposits only
with ``--paper-deposits``."""

from __future__ import annotations

import asyncio
import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from machine import free_port, stop_process
from tests.charting.test_api_command import _KeySetHandler
from tests.storage.stoppable import StoppablePostgres
from tests.support import tokens
from tests.trading.http.test_api import ORDERS, limit_buy
from trading.paper.matcher import PaperMatcher
from trading.service.shell import TradingService
from trading.store.database import Database, StoreSettings

REPO = Path(__file__).resolve().parents[3]
ALICE = 1


@pytest.fixture
def key_server() -> Iterator[str]:
    keys = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeySetHandler)
    threading.Thread(target=keys.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{keys.server_port}/auth/.well-known/jwks.json"
    keys.shutdown()
    keys.server_close()


def funded(url: str) -> str:
    """The database's schema, with account ALICE funded (paper funding, by the service)."""
    with Database(StoreSettings(url)) as database:
        database.create_tables()
        service = TradingService(database, PaperMatcher())
        asyncio.run(service.deposit(ALICE, "USDT", Decimal(100_000)))
        return database.schema


def started(
    command: list[str],
    base: str,
    env: dict[str, str] | None = None,
    stderr: int | None = None,
    name: str = "mdp trading serve",
) -> subprocess.Popen[bytes]:
    """``command`` started, once ``base``'s ``/readyz`` answers 200 (killed if it does not)."""
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=stderr)
    deadline = time.monotonic() + 30
    try:
        while True:
            assert process.poll() is None, f"{name} exited early"
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{name} did not answer within 30 s"
            time.sleep(0.1)
    except BaseException:
        process.kill()
        process.wait()
        raise


def test_the_command_serves_trading_and_resumes_after_a_kill(
    fresh_database: str, key_server: str
) -> None:
    schema = funded(fresh_database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "mdp.commands.trading", "serve", "--database-url", fresh_database,
        "--port", str(port), "--jwks-url", key_server, "--schema", f"{schema}_read",
    ]  # fmt: skip
    alice = {"Authorization": f"Bearer {tokens.issue(account_id=ALICE, principal=ALICE)}"}
    process = started(command, base)
    try:
        assert httpx.get(f"{base}{ORDERS}").status_code == 401
        deposit = {"currency": "USDT", "amount": "5"}
        refused = httpx.post(f"{base}/trading/v1/deposits", json=deposit, headers=alice)
        assert (refused.status_code, refused.json()["code"]) == (403, "deposits-off")
        placed = httpx.post(f"{base}{ORDERS}", json=limit_buy("cmd-1"), headers=alice)
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order"]["order_id"]
        deadline = time.monotonic() + 10
        while not httpx.get(f"{base}{ORDERS}", headers=alice).json()["orders"]:
            assert time.monotonic() < deadline, "the read models did not follow the log"
            time.sleep(0.05)
        process.kill()  # SIGKILL: nothing is flushed, nothing is said goodbye to
        process.wait()
        process = started([*command, "--paper-deposits"], base)
        paid = httpx.post(f"{base}/trading/v1/deposits", json=deposit, headers=alice)
        assert paid.status_code == 201, paid.text
        again = httpx.get(f"{base}{ORDERS}/{order_id}", headers=alice).json()["order"]
        assert again["status"] == "accepted"
        canceled = httpx.delete(f"{base}{ORDERS}/{order_id}", headers=alice)
        assert canceled.json()["order"]["status"] == "canceled"
        assert stop_process(process) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_cancel_lost_in_an_outage_ends_the_command_non_zero_with_our_message(
    stoppable_postgres: StoppablePostgres, key_server: str
) -> None:
    """The venue cancels the order, the store cannot take it: the service must restart, so
    ``mdp trading serve`` stops by itself and exits 1 saying why (its supervisor restarts it;
    ``test_process.py`` restarts the process's parts after such an outage)."""
    url = stoppable_postgres.database("mdp")
    funded(url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "mdp.commands.trading", "serve", "--database-url", url,
        "--port", str(port), "--jwks-url", key_server,
    ]  # fmt: skip
    alice = {"Authorization": f"Bearer {tokens.issue(account_id=ALICE, principal=ALICE)}"}
    process = started(command, base, stderr=subprocess.PIPE)
    try:
        placed = httpx.post(f"{base}{ORDERS}", json=limit_buy("lost"), headers=alice)
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order"]["order_id"]
        stoppable_postgres.stop()
        canceled = httpx.delete(f"{base}{ORDERS}/{order_id}", headers=alice, timeout=60)
        assert (canceled.status_code, canceled.json()["code"]) == (503, "store-unavailable")
        told = process.communicate(timeout=30)[1].decode()
        assert process.returncode == 1, told
        assert "mdp trading: error: the venue is ahead of the store after a failed ended" in told
        assert "exiting so that the process is restarted" in told
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_the_command_needs_a_key_set_and_a_database(fresh_database: str) -> None:
    for extra, told in ((["--database-url", fresh_database], "--jwks-url"), ([], "DATABASE_URL")):
        done = subprocess.run(
            [sys.executable, "-m", "mdp.commands.trading", "serve", *extra],
            cwd=REPO, capture_output=True, text=True, check=False,
            env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert told in done.stderr
