"""One name for "the database is away": :class:`DatabaseUnavailableError`.

psycopg raises :class:`psycopg.OperationalError` (or a subclass) for everything an operator
fixes outside the program: a server stopped or restarting, a connection terminated by an
administrator, a network gone, no connection free within the wait. Those are worth waiting
out; every other error is a fault in the program or the data and is raised as it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg


class DatabaseUnavailableError(ConnectionError):
    """The database could not be reached, or dropped the connection, during a call.

    A write that raised it may or may not have been committed; every write of the store is
    idempotent, so the caller writes the same again once the database is back.
    """


def describe(exc: BaseException) -> str:
    """The first line of a database error, for a log or status line (never a password:
    psycopg's messages name the host and port only)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextlib.contextmanager
def unavailable_as_error() -> Iterator[None]:
    """Raise :class:`DatabaseUnavailableError` for a :class:`psycopg.OperationalError`."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(describe(exc)) from exc
