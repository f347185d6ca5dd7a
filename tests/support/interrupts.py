"""SIGTERM and SIGHUP end a test run as Ctrl-C does, so that every fixture's teardown runs.

Python's default for SIGTERM ends the process at once: no ``finally`` and no fixture teardown
runs, and the servers the fixtures started in sessions of their own (the Kafka broker of
``mdp kafka start``, PostgreSQL of ``pg_ctl start``) outlive the run. ``timeout 600 pytest``
sends exactly that. Raised as :class:`KeyboardInterrupt` instead, pytest stops the test and
tears down what was set up, session fixtures included, then exits. A second signal during the
teardown does not cut it short (``kill -9`` still does; :mod:`tests.support.leash` covers that).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _once_more(signum: int, frame: FrameType | None) -> None:
    """Already tearing down: let it finish."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    for each in SIGNALS:
        signal.signal(each, _once_more)
    raise KeyboardInterrupt(f"ended by {signal.Signals(signum).name}")


def end_as_interrupted() -> None:
    """Install the handlers (in the main thread only, where Python runs them: pytest's, and
    each xdist worker's)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SIGNALS:
        signal.signal(signum, _interrupt)
