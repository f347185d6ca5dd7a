"""kill -9 of a real trading process in the middle of an order's saga: a fresh process
resumes, the script carries on, and the end equals a run without the kill."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.trading.service.scenario import Session, comparable, no_fault
from tests.trading.service.test_crash import wipe
from trading.store.database import Database


def run_until_killed(url: str, step: str, occurrence: int) -> int:
    """The number of the action the child was in when it was killed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.trading.service.saga_child", url, step, str(occurrence)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready, action = child.stdout.readline().split()
        assert ready == "ready"
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
        return int(action)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


@pytest.mark.parametrize(("step", "occurrence"), [("placed", 3), ("filled", 2)])
async def test_a_kill_mid_saga_then_resume_in_a_fresh_process_ends_as_a_clean_run(
    database: Database, fresh_database: str, step: str, occurrence: int
) -> None:
    clean = comparable(await Session(database, no_fault).run())
    wipe(fresh_database)
    cut_off = run_until_killed(fresh_database, step, occurrence)
    restarted = Session(database, no_fault)
    await restarted.service.resume()
    assert comparable(await restarted.run(start=cut_off)) == clean
