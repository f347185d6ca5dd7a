"""``mdp trading rebuild``, run as a user runs it: the read models replayed from the log into
fresh tables that replace the live ones, the outcome on stderr. (An unreachable database:
``test_database_errors.py``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg.sql import SQL, Identifier

from tests.trading.readmodels.sessions import Log, session
from tests.trading.readmodels.test_readmodels import FILL_ALL, FUNDED, NEAR_BUY, contents
from trading.readmodels.tables import model
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.projector import Projector
from trading.store.wire import EVENT_CODEC

MDP = Path(sys.executable).parent / "mdp"


def mdp(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [str(MDP), *argv], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_rebuild_replays_the_log_into_tables_equal_to_the_live_ones(fresh_database: str) -> None:
    with Database(StoreSettings(fresh_database)) as database:
        database.create_tables()
        schema = f"{database.schema}_read"
        live = Projector(database, EventStore(database, EVENT_CODEC), model(schema))
        live.start()
        log = Log(EventStore(database, EVENT_CODEC))
        for account in (1, 2):
            log.append(session(account, [*FUNDED, *[NEAR_BUY, FILL_ALL] * 3])[0])
        live.catch_up()
        before = contents(fresh_database, schema)
        last = live.position()
    assert before["trading_fills"]
    with psycopg.connect(fresh_database) as conn:  # live tables gone wrong: the rebuild fixes them
        conn.execute(SQL("DELETE FROM {}.trading_fills").format(Identifier(schema)))
        conn.execute(SQL("UPDATE {}.trading_balances SET cash = 0").format(Identifier(schema)))

    done = mdp("trading", "rebuild", "--database-url", fresh_database, "--schema", schema)

    assert done.returncode == 0, done.stderr
    assert contents(fresh_database, schema) == before
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(
        f"mdp trading: read models in schema {schema} rebuilt up to event {last}"
    )


def test_a_rebuild_killed_mid_way_leaves_the_live_tables_and_a_rerun_completes(
    fresh_database: str,
) -> None:
    """SIGKILL once the replay has committed some batches into the fresh schema: the live
    tables are as they were (the swap never happened), and the next run completes."""
    with Database(StoreSettings(fresh_database)) as database:
        database.create_tables()
        schema = f"{database.schema}_read"
        live = Projector(database, EventStore(database, EVENT_CODEC), model(schema))
        live.start()
        Log(EventStore(database, EVENT_CODEC)).append(
            session(1, [*FUNDED, *[NEAR_BUY, FILL_ALL] * 400])[0]
        )
        live.catch_up()
        before = contents(fresh_database, schema)
        argv = [
            str(MDP),
            "trading",
            "rebuild",
            "--database-url",
            fresh_database,
            "--schema",
            schema,
        ]
        with subprocess.Popen(argv, stderr=subprocess.DEVNULL) as rebuilding:
            fresh = Projector.reader(f"{schema}_rebuild")
            log = NotificationLog(database)
            deadline = time.monotonic() + 60
            while log.position(fresh) == 0 and rebuilding.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            rebuilding.send_signal(signal.SIGKILL)
        assert rebuilding.returncode == -signal.SIGKILL, "the rebuild ended before the kill"
        assert 0 < log.position(fresh) < live.position()
    assert contents(fresh_database, schema) == before

    done = mdp("trading", "rebuild", "--database-url", fresh_database, "--schema", schema)

    assert done.returncode == 0, done.stderr
    assert contents(fresh_database, schema) == before


def test_a_schema_that_is_no_identifier_is_refused_before_any_work() -> None:
    done = mdp("trading", "rebuild", "--database-url", "postgresql://u@127.0.0.1:1/x",
               "--schema", "a; DROP")  # fmt: skip
    assert done.returncode == 2
    assert "a schema name is an identifier" in done.stderr


def test_followers_in_another_process_are_refused_on_the_in_process_bus() -> None:
    """With ``--bus memory`` nothing in another process could publish or project this one's
    events: the read models would never move. Refused before the database is asked."""
    done = mdp("trading", "serve", "--database-url", "postgresql://u@127.0.0.1:1/x",
               "--followers", "separate", "--bus", "memory")  # fmt: skip
    assert done.returncode == 2
    assert "--followers separate needs --bus kafka" in done.stderr
