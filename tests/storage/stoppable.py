"""A private PostgreSQL of one test, which the test stops and starts again (on the same port):
the database outage of the fault tests. The session's shared server is never stopped."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from storage import PostgresServer, migrate


class StoppablePostgres:
    """``with StoppablePostgres() as pg``: started; :meth:`stop` and :meth:`start` at will;
    stopped and removed at the end."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mdp-test-outage-pg-"))
        self._server = PostgresServer(self.folder, durable=False)
        self.port = 0

    def __enter__(self) -> Self:
        self._server.start()
        self.port = self._server.port
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def database(self, name: str = "mdp") -> str:
        """URL of database ``name``, made and migrated."""
        url = self._server.create_database(name)
        migrate(url)
        return url

    def stop(self) -> None:
        """A fast shutdown: every connection is dropped, new ones are refused."""
        self._server.stop()

    def start(self) -> None:
        """Start again, on the same port (clients reconnect to the address they know)."""
        self._server.start()
        assert self._server.port == self.port
