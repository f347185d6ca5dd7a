"""A database that cannot be used is one line naming it with the password masked, whatever the
command and whatever is wrong with the address: never a traceback, never the password."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

MDP = Path(sys.executable).parent / "mdp"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def run(*argv: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [str(MDP), *argv], capture_output=True, text=True, timeout=90, check=False, env=env
    )
    return done.returncode, done.stdout + done.stderr


COMMANDS = {
    "up": ("up", "--http-port", "0", "--ws-port", "0"),
    "db": ("db", "status"),
    "api": ("api", "--port", "0", "--wait", "0"),
    "gateway": ("gateway", "--port", "0"),
    "trading": ("trading", "rebuild"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_database_is_one_line_with_the_password_masked(command: str) -> None:
    port = closed_port()
    code, output = run(
        *COMMANDS[command], "--database-url", f"postgresql://u:pw1x@127.0.0.1:{port}/x"
    )
    assert code == 1, output
    assert "pw1x" not in output
    assert "Traceback" not in output
    shown = f"postgresql://u:***@127.0.0.1:{port}/x"
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"mdp {command}: error: cannot use the database at {shown}: "), output


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pa%ss@127.0.0.1/x",  # a % not percent-encoded
        "postgresql://u:pa ss@127.0.0.1/x",
        "host=127.0.0.1 password=pa ss dbname=x",
    ],
)
@pytest.mark.parametrize("command", ["up", "db"])
def test_a_malformed_address_is_refused_without_quoting_it(command: str, url: str) -> None:
    code, output = run(*COMMANDS[command], "--database-url", url)
    assert code == 2, output
    assert "pa%ss" not in output
    assert "pa ss" not in output
    assert "the database URL is malformed" in output
