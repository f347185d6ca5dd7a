"""A private PostgreSQL of one test, which the test stops and starts again (on the same port):
the database outage of the fault tests. The session's shared server is never stopped.

``pg_ctl start`` leaves the server in a session of its own: each start is leashed to the test
process (:mod:`tests.support.leash`), so the server is stopped by its pid however the run
ends, and a start that fails half-way stops what it started."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from storage import PostgresServer, migrate
from tests.support import leash


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the server running on ``data_dir``, from its ``postmaster.pid``."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def start_leashed(server: PostgresServer) -> int | None:
    """Start ``server`` and leash it; stopped again if the start fails. Its pid."""
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    pid = postmaster_pid(server.data_dir)
    if pid is not None:
        leash.leash(pid, str(server.data_dir))
    return pid


def stop_leashed(server: PostgresServer, pid: int | None) -> None:
    """Stop ``server`` and let go of its leash (which stops it if that failed)."""
    try:
        server.stop()
    finally:
        if pid is not None:
            leash.release(pid)


class StoppablePostgres:
    """``with StoppablePostgres() as pg``: started; :meth:`stop` and :meth:`start` at will;
    stopped and removed at the end."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mdp-test-outage-pg-"))
        self._server = PostgresServer(self.folder, durable=False)
        self.port = 0
        self._pid: int | None = None

    def __enter__(self) -> Self:
        try:
            self._pid = start_leashed(self._server)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self.port = self._server.port
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def database(self, name: str = "mdp") -> str:
        """URL of database ``name``, made and migrated."""
        url = self._server.create_database(name)
        migrate(url)
        return url

    def stop(self) -> None:
        """A fast shutdown: every connection is dropped, new ones are refused."""
        stop_leashed(self._server, self._pid)
        self._pid = None

    def start(self) -> None:
        """Start again, on the same port (clients reconnect to the address they know)."""
        self._pid = start_leashed(self._server)
        assert self._server.port == self.port
