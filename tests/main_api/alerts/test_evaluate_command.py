"""``mdp alerts evaluate``: refuses bad input with our messages (exit 2) and says in one line
why a database cannot be used (exit 1), before it touches the broker."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from machine import free_port, stop_process
from mdp.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_the_command_needs_a_database_and_a_bounded_batch(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["alerts", "evaluate"]) == 2
    assert "mdp alerts evaluate: error: give --database-url" in capsys.readouterr().err
    url = "postgresql://nobody@127.0.0.1:1/none"
    assert main(["alerts", "evaluate", "--database-url", url, "--batch", "0"]) == 2
    assert "--batch must be 1 to 10,000" in capsys.readouterr().err
    assert main(["alerts", "evaluate", "--database-url", url, "--wait", "-1"]) == 2
    assert "--wait must be 0 or more" in capsys.readouterr().err


def test_a_database_that_cannot_be_reached_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none?connect_timeout=1"
    assert main(["alerts", "evaluate", "--database-url", url, "--wait", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "mdp alerts evaluate: error: cannot use the database at" in err
    assert "secret" not in err


def test_a_database_away_at_start_is_tried_again_for_the_wait_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none?connect_timeout=1"
    began = time.monotonic()
    assert main(["alerts", "evaluate", "--database-url", url, "--wait", "1.5"]) == 1
    took = time.monotonic() - began
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("mdp alerts evaluate: the database unavailable (cannot use the")
    assert lines[0].endswith("; trying again for up to 1.5 s")
    assert lines[-1].startswith("mdp alerts evaluate: error: cannot use the database at")
    assert len(lines) == 2  # one line for the outage, however many attempts
    assert 0.5 < took < 10
    assert "secret" not in "".join(lines)


def test_a_stop_while_it_waits_for_the_database_ends_it_at_once() -> None:
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none?connect_timeout=1"
    command = [sys.executable, "-m", "mdp.commands.alerts", "evaluate", "--database-url", url]
    with subprocess.Popen(
        [*command, "--wait", "600"], cwd=REPO, stderr=subprocess.PIPE, text=True
    ) as evaluator:
        assert evaluator.stderr is not None
        first = evaluator.stderr.readline()
        assert first.startswith("mdp alerts evaluate: the database unavailable (cannot use the")
        asked = time.monotonic()
        assert stop_process(evaluator) == 0, evaluator.stderr.read()
    assert time.monotonic() - asked < 10  # not the 600 s it was ready to wait
