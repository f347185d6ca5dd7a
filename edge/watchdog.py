"""HAProxy's leash: stops HAProxy when the process that started it is gone, even by ``kill -9``.

Run as ``python -I edge/watchdog.py PID GRACE`` by :class:`edge.haproxy.Haproxy` right after it
starts HAProxy (master ``PID``), with a pipe as standard input whose other end only the starter
holds. The kernel closes that end however the starter ends, so end of file on standard input
means "stop HAProxy": SIGTERM, then SIGKILL after ``GRACE`` seconds. HAProxy ending first ends
the watchdog too. The process is named by a pidfd, opened while HAProxy is known to be the
starter's child, so a reused process id can never be signalled.

Why not ``PR_SET_PDEATHSIG``: the kernel sends that signal when the *thread* that forked the
child ends, not the process (prctl(2)); the edge starts HAProxy from worker threads
(``asyncio.to_thread``), whose end would stop a healthy HAProxy. And setting it needs a
``preexec_fn``, which Python documents as unsafe in a process with threads.

Standard library only, so that it starts in a few milliseconds with ``-I``.
"""

from __future__ import annotations

import os
import selectors
import signal
import sys


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:
        return None
    # the name, in parentheses, may hold spaces: the fields after it are fixed
    return int(stat[stat.rindex(b")") + 2 :].split()[1])


def _ended(pidfd: int, timeout: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(pidfd, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def watch(pid: int, grace: float) -> int:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return 0
    if _parent_of(pid) != os.getppid():  # not our sibling: it ended, the id is someone else's
        return 0
    return hold(pidfd, grace)


def hold(pidfd: int, grace: float) -> int:
    """Stop the process of ``pidfd`` (SIGTERM, then SIGKILL after ``grace`` seconds) at end of
    file on standard input; return as soon as it ends by itself."""
    with selectors.DefaultSelector() as selector:
        selector.register(pidfd, selectors.EVENT_READ, "process")
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "starter")
        while True:
            ready = {key.data for key, _ in selector.select()}
            if "process" in ready:
                return 0
            if not os.read(sys.stdin.fileno(), 512):  # end of file: the starter is gone
                break
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            signal.pidfd_send_signal(pidfd, signum)
        except ProcessLookupError:
            return 0
        if _ended(pidfd, grace):
            return 0
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the starter
    sys.exit(watch(int(sys.argv[1]), float(sys.argv[2])))
