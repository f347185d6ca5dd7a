"""The error a tick file raises when it cannot be read at all."""

from __future__ import annotations


class TickFileError(ValueError):
    """A missing file, an unknown format, a bad header or an unreadable envelope.

    Bad *rows* never raise: they are counted in the :class:`~ingest.files.report.ReadReport`
    and reading goes on. The ``mdp`` command maps this error to exit code 2.
    """
