"""The process's readiness checks, answered on the admin port's ``/readyz``.

A service that runs without an HTTP port of its own (the storage writer, the candle worker,
the alert evaluator, ingest) says what it needs here: a named check that returns ``None``
when it holds and a short code when it does not (the shape of :mod:`web.health`). Checks are
called from the admin server's thread at each probe: they read what their objects already
know and do no I/O.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

Check = Callable[[], str | None]


class Readiness:
    """Named checks; a check that raises reads as ``error`` (and is logged)."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._lock = threading.Lock()

    def add(self, name: str, check: Check) -> Callable[[], None]:
        """Check ``name`` with ``check`` (replacing one of that name); returns the function
        that removes it."""
        with self._lock:
            self._checks[name] = check

        def remove() -> None:
            with self._lock:
                if self._checks.get(name) is check:
                    del self._checks[name]

        return remove

    def checks(self) -> dict[str, str | None]:
        """Every check's answer now."""
        with self._lock:
            checks = list(self._checks.items())
        answers: dict[str, str | None] = {}
        for name, check in checks:
            try:
                answers[name] = check()
            except Exception:
                log.exception("readiness check %s failed", name)
                answers[name] = "error"
        return answers


READINESS: Final = Readiness()
"""This process's checks (none: ``/readyz`` answers ready while the process answers)."""
