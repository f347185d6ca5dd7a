"""The append on psycopg's async connection: a group commit awaited on the event loop, with
no worker thread (:class:`~trading.store.aio.AsyncRepository` given an appender).

The statements, their order and how their answers are read are
:class:`~trading.store.recorder.CheckedRecorder`'s (one round trip; two with readers'
positions); only the I/O differs. One connection of its own (the group commits run one at a
time), made at the first append and again after a failure, set up as the library's pool sets
up its own (autocommit, rows as dicts, the composite type of the events registered). An
unreachable database gets the library's rule (10 attempts, 0.2 s apart), and the errors are
raised as the library's, so :class:`~trading.store.events.EventStore` tells them as ours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Final

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
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg.types.composite import register_composite

from trading.store.database import Database
from trading.store.errors import StoreError
from trading.store.recorder import BEGIN, COMMIT, ROLLBACK, Expected, conflict, not_moved

ATTEMPTS: Final = 10
"""Tries of an append while the database is out of reach (the library's number)."""

WAIT_S: Final = 0.2
"""The pause between two tries (the library's)."""

_OPEN: Final = (TransactionStatus.INTRANS, TransactionStatus.INERROR)


class AsyncAppender:
    """``await insert_events(events, expected=..., trackings=...)``: what
    :meth:`CheckedRecorder.insert_events <trading.store.recorder.CheckedRecorder.insert_events>`
    does, on an async connection. One append at a time (the group commit's loop); close it
    with :meth:`aclose`."""

    def __init__(
        self, database: Database, attempts: int = ATTEMPTS, wait_s: float = WAIT_S
    ) -> None:
        self._db = database
        self._recorder = database.events
        self._attempts = attempts
        self._wait_s = wait_s
        self._conn: AsyncConnection[DictRow] | None = None

    async def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        expected: Expected = (),
        trackings: Sequence[Tracking] = (),
    ) -> list[int]:
        for attempt in range(1, self._attempts + 1):
            try:
                conn = await self._connection()
                try:
                    return await self._append(conn, stored_events, expected, trackings)
                finally:  # an error of the database left the transaction aborted: end it
                    if conn.info.transaction_status in _OPEN:
                        with contextlib.suppress(psycopg.Error):
                            await conn.rollback()
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                await self.aclose()
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

    async def _append(
        self,
        conn: AsyncConnection[DictRow],
        stored_events: Sequence[StoredEvent],
        expected: Expected,
        trackings: Sequence[Tracking],
    ) -> list[int]:
        recorder = self._recorder
        rows: list[DictRow] | None = None
        refusal: StoreError | None = None
        curs = conn.cursor()
        async with conn.pipeline() as pipeline:
            await curs.execute(BEGIN)
            for statement in recorder.lock_table_statements:
                await curs.execute(statement, prepare=True)
            await curs.execute(recorder.notify_statement)
            moved = [conn.cursor() for _ in trackings]
            for moving, tracking in zip(moved, trackings, strict=True):
                await moving.execute(
                    recorder.move_statement, recorder.move_params(tracking), prepare=True
                )
            await curs.execute(
                recorder.append_statement,
                recorder.append_params(stored_events, expected),
                prepare=True,
            )
            if moved:  # read the answers before the end: a refusal rolls back
                await pipeline.sync()
                rows = await curs.fetchall()
                answers = [await moving.fetchone() for moving in moved]
                refusal = conflict(rows, expected) or not_moved(answers, trackings)
            await conn.cursor().execute(COMMIT if refusal is None else ROLLBACK)
        if rows is None:
            rows = await curs.fetchall()
            refusal = conflict(rows, expected)
        if refusal is not None:
            raise refusal
        return [int(row["notification_id"]) for row in rows]

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
