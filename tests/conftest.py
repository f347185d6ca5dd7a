"""Fixtures shared by every test package."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql
from psycopg.conninfo import make_conninfo

from storage import PostgresServer, PostgresUnavailableError, migrate
from telemetry.logs import QUIET, installed
from tests.storage.stoppable import StoppablePostgres, start_leashed, stop_leashed
from tests.support.interrupts import end_as_interrupted

# Property tests take no deadline: examples are timed by the machine's load, not by our code
# (speed is the benchmarks' business). In CI the examples are derived from each test's name, so
# a run is repeatable; elsewhere they are random, to keep finding new cases.
settings.register_profile("mdp", deadline=None, print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("mdp"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "mdp")


def pytest_configure(config: pytest.Config) -> None:
    """``timeout``'s SIGTERM ends the run as Ctrl-C does: every fixture's teardown runs and
    stops what it started (tests/support/interrupts.py)."""
    end_as_interrupted()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The handlers again before each test: a command run in this process sets its own
    (``stop_on_signals``), and its event loop hands SIGTERM back to Python's default when it
    closes."""
    end_as_interrupted()


@pytest.fixture(autouse=True)
def _root_logger_as_it_was() -> Iterator[None]:
    """A command run in this process configures the process's logging (its JSON handler, with
    the filters that mask secrets in a record); the next test finds the root logger as this
    one did, so its log capture sees records as they were made."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET}
    yield
    for added in installed():
        if added not in handlers:
            root.removeHandler(added)
    root.setLevel(level)
    for name, was in quiet.items():
        logging.getLogger(name).setLevel(was)


SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
"""Real venue data beside the repository (``<repo>/../shared/data``); never copied into it."""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder; skips the test when it is absent."""
    folder = SHARED_DATA.resolve()
    if not folder.is_dir():
        pytest.skip(f"the shared data folder {folder} is absent (it lives beside the repository)")
    return folder


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session, as a URL of a database to administer it from.

    ``DATABASE_URL`` when set (its user needs CREATEDB: tests make databases of their own);
    else a private server (:class:`storage.PostgresServer`) in a temporary folder on a free
    port, stopped and removed at the end.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    folder = Path(tempfile.mkdtemp(prefix="mdp-test-pg-"))
    server = PostgresServer(folder, durable=False, timescaledb_jobs=False)
    pid = None
    try:
        try:
            pid = start_leashed(server)  # stopped even if this process is killed
        except PostgresUnavailableError as exc:
            pytest.fail(f"the tests need PostgreSQL: {exc}")
        yield server.url
    finally:
        stop_leashed(server, pid)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def test_database(postgres_url: str) -> Iterator[str]:
    """URL of a database made for this session's tests (dropped at the end), so that a shared
    server's own databases are never touched."""
    name = f"mdp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_params(postgres_url, dbname=name)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def fresh_database(test_database: str) -> Iterator[str]:
    """URL of an empty database of one test's own: a new schema of the session's database,
    first on the ``search_path`` of every connection made with this URL (a tenth of the time
    a CREATE DATABASE takes). Dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(test_database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield _with_params(test_database, options=f"-c search_path={schema}")
    with psycopg.connect(test_database, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def migrated_database(fresh_database: str) -> str:
    """URL of a database of one test's own (see :func:`fresh_database`), migrated."""
    migrate(fresh_database)
    return fresh_database


def _with_params(url: str, **params: str) -> str:
    """``url`` with other connection parameters; a URL stays a URL (``dbname`` is its path)."""
    if not url.startswith(("postgresql://", "postgres://")):
        return make_conninfo(url, **params)
    parts = urlsplit(url)
    path = "/" + params.pop("dbname") if "dbname" in params else parts.path
    query = urlencode([*parse_qsl(parts.query), *params.items()], quote_via=quote)
    return urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))


@pytest.fixture
def stoppable_postgres() -> Iterator[StoppablePostgres]:
    """A private PostgreSQL of this test's own, which it may stop and start again."""
    with StoppablePostgres() as server:
        yield server
