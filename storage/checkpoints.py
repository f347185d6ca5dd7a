"""Engine checkpoints in the database (a :class:`streams.checkpoints.CheckpointStore`)."""

from __future__ import annotations

import psycopg

from storage.unavailable import unavailable_as_error

CONNECT_TIMEOUT = 5
"""Seconds to wait for a connection before the database counts as unavailable."""


class PostgresCheckpoints:
    """Named blobs in the ``checkpoints`` table; one short connection per call.

    A call that cannot reach the database raises
    :class:`~storage.unavailable.DatabaseUnavailableError` (a :class:`ConnectionError`)."""

    def __init__(self, url: str) -> None:
        self._url = url

    async def load(self, name: str) -> bytes | None:
        with unavailable_as_error():
            async with await psycopg.AsyncConnection.connect(
                self._url, connect_timeout=CONNECT_TIMEOUT
            ) as conn:
                cursor = await conn.execute("SELECT data FROM checkpoints WHERE name = %s", (name,))
                row = await cursor.fetchone()
        return None if row is None else bytes(row[0])

    async def save(self, name: str, data: bytes) -> None:
        with unavailable_as_error():
            async with await psycopg.AsyncConnection.connect(
                self._url, connect_timeout=CONNECT_TIMEOUT
            ) as conn:
                await conn.execute(
                    "INSERT INTO checkpoints (name, data, saved_at) VALUES (%s, %s, now())"
                    " ON CONFLICT (name) DO UPDATE SET data = excluded.data, saved_at = now()",
                    (name, data),
                )
