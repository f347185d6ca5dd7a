"""A process for the kill -9 test of an append: it opens an account, then appends a deposit
with a reader's position and stops dead between the append's two round trips (the events are
inserted and the position moved in its open transaction, the ``COMMIT`` not sent): it prints
``ready`` there and sleeps until the test kills it with SIGKILL.

``python -m tests.trading.store.append_child URL READER``
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from eventsourcing.persistence import Tracking
from psycopg.rows import DictRow

from tests.trading.store import toy
from trading.store import recorder
from trading.store.database import Database, StoreSettings
from trading.store.errors import StoreError
from trading.store.events import EventStore


def halt(answers: Sequence[DictRow | None], trackings: Sequence[Tracking]) -> StoreError | None:
    print("ready", flush=True)
    while True:
        time.sleep(60)


def main(url: str, reader: str) -> None:
    with Database(StoreSettings(url)) as database:
        database.create_tables()
        events = EventStore(database, toy.CODEC)
        events.append("account:1", 0, [toy.Opened(1)])
        recorder.not_moved = halt  # the fault hook: the point between the two round trips
        events.append("account:1", 1, [toy.Deposited(1, 5)], Tracking(reader, 1))


if __name__ == "__main__":
    main(*sys.argv[1:])
