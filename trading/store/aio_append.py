"""The append on psycopg's async connection: a group commit awaited on the event loop, with
no worker thread (:class:`~trading.store.aio.AsyncRepository` given an appender). A benchmark
contender (``bench.trading --append loop``), measured and not taken: the service appends on
the library's pool in a worker thread (docs/trading.md, "On psycopg's async connection").

The statements, their order and how their answers are read are
:meth:`CheckedRecorder.plan <trading.store.recorder.CheckedRecorder.plan>`'s (one round trip;
two with readers' positions); only the I/O differs. One connection of its own, one append at a
time on it (a lock), made at the first append and again after any failed attempt (an error or
a cancellation leaves it in a state not known: it is closed), set up as the library's pool sets
up its own (autocommit, rows as dicts, the composite type of the events registered). Every
``OperationalError`` and ``InterfaceError`` of psycopg gets the library's rule (10 attempts,
0.2 s apart, on a new connection each), and the errors are raised as the library's, so
:class:`~trading.store.events.EventStore` tells them as ours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
    Tracking,
)
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.composite import register_composite

from trading.store.database import Database
from trading.store.recorder import ATTEMPTS, WAIT_S, Answers, AppendPlan, Expected


class AsyncAppender:
    """``await insert_events(events, expected=..., trackings=...)``: what
    :meth:`CheckedRecorder.insert_events <trading.store.recorder.CheckedRecorder.insert_events>`
    does, on an async connection; a second caller waits for the first. Close it with
    :meth:`aclose`."""

    def __init__(
        self, database: Database, attempts: int = ATTEMPTS, wait_s: float = WAIT_S
    ) -> None:
        self._db = database
        self._recorder = database.events
        self._attempts = attempts
        self._wait_s = wait_s
        self._conn: AsyncConnection[DictRow] | None = None
        self._lock = asyncio.Lock()
        """One append at a time on the one connection."""

    async def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        expected: Expected = (),
        trackings: Sequence[Tracking] = (),
    ) -> list[int]:
        plan = self._recorder.plan(stored_events, expected, trackings)
        async with self._lock:
            for attempt in range(1, self._attempts + 1):
                try:
                    return plan.outcome(await self._send(plan))
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    if attempt == self._attempts:
                        if isinstance(exc, psycopg.InterfaceError):
                            raise InterfaceError(str(exc)) from exc
                        raise OperationalError(str(exc)) from exc
                    await asyncio.sleep(self._wait_s)
                except psycopg.IntegrityError as exc:
                    raise IntegrityError(str(exc)) from exc
                except psycopg.Error as exc:
                    raise PersistenceError(str(exc)) from exc
            raise AssertionError("no attempt made")  # attempts is at least 1

    async def _send(self, plan: AppendPlan) -> Answers:
        """``plan``'s statements sent and their answers read, on the connection; any failure
        (an error, a cancellation) closes the connection, whose state is then unknown (in a
        pipeline, in a transaction): the next attempt makes a new one."""
        try:
            conn = await self._connection()
            cursors = [conn.cursor() for _ in range(plan.cursors)]
            answers: Answers | None = None
            async with conn.pipeline() as pipeline:
                for n, statement in plan.statements:
                    await cursors[n].execute(
                        statement.query, statement.params, prepare=statement.prepare
                    )
                if plan.reads_before_end:
                    await pipeline.sync()
                    answers = [await cursor.fetchall() for cursor in cursors]
                await conn.cursor().execute(plan.end(answers))
            if answers is None:
                answers = [await cursor.fetchall() for cursor in cursors]
        except BaseException:
            await self.aclose()
            raise
        return answers

    async def _connection(self) -> AsyncConnection[DictRow]:
        if self._conn is None or self._conn.closed:
            settings = self._db.settings
            conn = await AsyncConnection.connect(
                settings.url,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=max(1, round(settings.connect_timeout_s)),
            )
            name = self._recorder.stored_event_type_name
            register_composite(self._db.datastore.psycopg_type_adapters[name], conn)
            self._conn = conn
        return self._conn

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
