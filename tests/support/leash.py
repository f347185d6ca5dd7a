"""A leash for a server a test starts through another program that leaves it running in a
session of its own (``mdp kafka start``, ``pg_ctl start``): the server is stopped, by its pid,
when the test process is gone, however it ended (``kill -9``, an out-of-memory kill), where no
``finally`` of the test's runs.

The leash is a small process (``tests/support/leash_watch.py PID GRACE MARKER``) with a pipe
as standard input whose other end only the test process holds. The kernel closes that end
however the test process ends, and the leash then stops the server (SIGTERM, then SIGKILL
after ``GRACE`` seconds); the server ending first ends it too. The server is named by a pidfd
and only taken for the server when its command line holds ``MARKER`` (its data folder), so a
reused process id is never signalled.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WATCHER = Path(__file__).resolve().with_name("leash_watch.py")
GRACE_S = 20.0
"""How long a server has to stop on SIGTERM before SIGKILL."""

_LEASHES: dict[int, subprocess.Popen[bytes]] = {}
"""The leashes of this process, by the server's pid: each holds the write end of its pipe."""


def leash(pid: int, marker: str, grace: float = GRACE_S) -> None:
    """Tie the server ``pid``, whose command line holds ``marker``, to this process."""
    held = _LEASHES.get(pid)
    if held is not None and held.poll() is None:
        return
    _LEASHES[pid] = subprocess.Popen(
        [sys.executable, "-I", str(WATCHER), str(pid), str(grace), marker],
        stdin=subprocess.PIPE,
        start_new_session=True,  # a terminal's Ctrl-C or a group's SIGTERM is for the test
    )


def release(pid: int, timeout: float = 5.0) -> None:
    """Let go of the leash of ``pid`` once the test has stopped the server (the leash then
    ends by itself); a server still running is stopped by the leash now."""
    held = _LEASHES.pop(pid, None)
    if held is None:
        return
    try:
        held.wait(timeout)
    except subprocess.TimeoutExpired:
        assert held.stdin is not None
        held.stdin.close()  # the leash stops the server
        held.wait(GRACE_S + 10.0)
    if held.stdin is not None:
        held.stdin.close()
