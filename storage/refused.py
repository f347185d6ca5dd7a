"""One name for "the database refused a value": :class:`WriteRefusedError`.

psycopg raises :class:`psycopg.DataError` when the server refuses a value for what it is
(SQLSTATE class 22, data exception: a NUL character in text, a number or a time out of the
column's range). Waiting does not help, unlike :mod:`storage.unavailable`: the same write is
refused again, so its caller writes what it can without the offending row.
"""

from __future__ import annotations


class WriteRefusedError(ValueError):
    """The database refused a value of a write; nothing of that write was stored."""
