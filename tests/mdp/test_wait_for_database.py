"""A service started before its database waits for it (``--wait``, default 60 s) instead of
giving up at once: one line when the wait begins, then it serves once the database is up; or,
past ``--wait``, one line with the last error (password masked) and exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from machine import free_port
from mdp.cli import main
from tests.storage.stoppable import StoppablePostgres

MDP = Path(sys.executable).parent / "mdp"
JWKS = ("--jwks-url", "http://127.0.0.1:1/jwks.json")
COMMANDS = {
    "api": (["api", "--port", "0"], "mdp api"),
    "main-api": (["main-api", "--port", "0", *JWKS], "mdp main-api"),
    "trading": (["trading", "serve", "--port", "0", *JWKS], "mdp trading"),
    "auth": (["auth", "serve", "--port", "0"], "mdp auth"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_away_past_the_wait_is_one_line_then_exit_1(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, name = COMMANDS[command]
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none"
    began = time.monotonic()
    assert main([*argv, "--database-url", url, "--wait", "1"]) == 1
    took = time.monotonic() - began
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"{name}: the database unavailable (cannot use the database at")
    assert lines[0].endswith("; trying again for up to 1 s")
    assert lines[-1].startswith(
        f"{name}: error: cannot use the database at postgresql://nobody:***@"
    )
    assert len(lines) == 2  # one line for the wait, however many attempts
    assert 0.9 < took < 10
    assert "secret" not in "".join(lines)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_negative_wait_is_refused(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv, name = COMMANDS[command]
    url = "postgresql://nobody@127.0.0.1:1/none"
    assert main([*argv, "--database-url", url, "--wait", "-1"]) == 2
    assert f"{name}: error: --wait must be 0 or more" in capsys.readouterr().err


def test_a_service_started_before_its_database_serves_once_it_is_up(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database()
    stoppable_postgres.stop()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    argv = [str(MDP), "auth", "serve", "--database-url", url, "--port", str(port), "--wait", "30"]
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env) as service:
        try:
            assert service.stderr is not None
            first = service.stderr.readline()
            assert first.startswith("mdp auth: the database unavailable (cannot use the database")
            stoppable_postgres.start()
            deadline = time.monotonic() + 20
            while True:
                assert service.poll() is None, service.stderr.read()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/auth/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.1)
        finally:
            service.terminate()  # this test's own process, by its pid
            service.wait(timeout=30)
