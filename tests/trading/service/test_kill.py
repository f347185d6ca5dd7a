"""kill -9 of a real trading process in the middle of an order's saga: a fresh process
resumes, the script carries on, and the end equals a run without the kill."""

from __future__ import annotations

import pytest

from tests.trading.kill import kill_when_ready
from tests.trading.service.scenario import Session, comparable, no_fault
from tests.trading.service.test_crash import wipe
from trading.store.database import Database


def run_until_killed(url: str, step: str, occurrence: int) -> int:
    """The number of the action the child was in when it was killed."""
    (action,) = kill_when_ready("tests.trading.service.saga_child", url, step, str(occurrence))
    return int(action)


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
