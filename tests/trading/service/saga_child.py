"""A trading process for the kill -9 test: it runs the script of
:mod:`tests.trading.service.scenario` and stops dead after the OCCURRENCE-th append of STEP
(it prints ``ready N``, N the number of the action it was in, and sleeps until the test kills
it with SIGKILL).

``python -m tests.trading.service.saga_child URL STEP OCCURRENCE``
"""

from __future__ import annotations

import asyncio
import sys
import time

from tests.trading.service.scenario import SECOND, START, Session, crash_at
from trading.store.database import Database, StoreSettings


async def main(url: str, step: str, occurrence: int) -> None:
    with Database(StoreSettings(url, snapshot_every=10)) as database:
        database.create_tables()

        def halt(step: str, occurrence: int) -> None:
            print(f"ready {(session.at - START) // SECOND}", flush=True)
            while True:
                time.sleep(60)

        session = Session(database, crash_at(step, occurrence, halt))
        await session.run()


if __name__ == "__main__":
    url, step, occurrence = sys.argv[1:]
    asyncio.run(main(url, step, int(occurrence)))
