"""A leash for a server a test starts through another program that leaves it running in a
session of its own (``mdp kafka start``, ``pg_ctl start``): the server is stopped, by its pid,
when the test process is gone, however it ended (``kill -9``, an out-of-memory kill), where no
``finally`` of the test's runs.

:func:`leash` starts ``python -I tests/support/leash.py PID MARKER GRACE`` with a pipe as
standard input whose other end only the test process holds. The kernel closes that end
however the test process ends, so end of file means "stop the server": SIGTERM, then SIGKILL
after ``GRACE`` seconds. The server ending first ends the leash too. The server is named by a
pidfd, and only taken for the server when its command line holds ``MARKER`` (its data folder),
so a reused process id is never signalled. :mod:`edge.watchdog` is the same for HAProxy, which
is the starter's own child; these servers are not (their starter has exited).

Standard library only, so that it starts in a few milliseconds with ``-I``.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys

GRACE_S = 20.0
"""How long a server has to stop on SIGTERM before SIGKILL."""

_LEASHES: dict[int, subprocess.Popen[bytes]] = {}
"""The leashes of this process, by the server's pid: each holds the write end of its pipe."""


def _holds(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return marker in file.read()
    except OSError:
        return False


def _ended(pidfd: int, timeout: float | None) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(pidfd, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def watch(pid: int, marker: bytes, grace: float) -> int:
    """Stop ``pid`` when standard input ends; return as soon as it ends by itself."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return 0
    if not _holds(pid, marker):  # checked after the pidfd pins the process: not our server
        return 1
    with selectors.DefaultSelector() as selector:
        selector.register(pidfd, selectors.EVENT_READ, "server")
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "test")
        while True:
            ready = {key.data for key, _ in selector.select()}
            if "server" in ready:
                return 0
            if not os.read(sys.stdin.fileno(), 512):  # end of file: the test process is gone
                break
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            signal.pidfd_send_signal(pidfd, signum)
        except ProcessLookupError:
            return 0
        if _ended(pidfd, grace):
            return 0
    return 0


def leash(pid: int, marker: str, grace: float = GRACE_S) -> None:
    """Tie the server ``pid``, whose command line holds ``marker``, to this process."""
    held = _LEASHES.get(pid)
    if held is not None and held.poll() is None:
        return
    _LEASHES[pid] = subprocess.Popen(
        [sys.executable, "-I", __file__, str(pid), marker, str(grace)],
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


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the test
    sys.exit(watch(int(sys.argv[1]), os.fsencode(sys.argv[2]), float(sys.argv[3])))
