"""The leash's own process: ``python -I tests/support/leash_watch.py PID GRACE MARKER``, started
by :func:`tests.support.leash.leash` with a pipe as standard input whose other end only the
test process holds. At end of file (the test process is gone, however it ended) it stops the
server ``PID``: SIGTERM, then SIGKILL after ``GRACE`` seconds; the server ending first ends it
too. The server is named by a pidfd and taken for the server only if its command line holds
``MARKER`` (its data folder), checked once the pidfd pins it, so a reused process id is never
signalled. Unlike HAProxy's watchdog (:mod:`edge.watchdog`, whose wait it shares), the server
is not the starter's child: ``mdp kafka start`` and ``pg_ctl start`` have exited.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _holds(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return marker in file.read()
    except OSError:
        return False


def watch(pid: int, grace: float, marker: bytes) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run by path, with -I
    from edge.watchdog import hold

    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return 0
    if not _holds(pid, marker):  # it ended, and the id is someone else's
        return 0
    return hold(pidfd, grace)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the test
    sys.exit(watch(int(sys.argv[1]), float(sys.argv[2]), os.fsencode(sys.argv[3])))
