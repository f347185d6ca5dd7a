"""Whether the process a pid file names still exists; stopping a child process."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any, Final

STOP_TIMEOUT_S: Final = 30.0
"""How long :func:`stop_process` waits for a child to end on ``SIGTERM`` unless told."""


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists, as ``kill(pid, 0)`` tells.

    Another user's process exists too. So does a zombie (ended, not yet reaped by its
    parent): its pid is still taken, and PostgreSQL's own check of its pid file sees it the
    same way. Callers that must know what runs there read ``/proc/<pid>/cmdline`` (empty for
    a zombie). A pid below 1 is no process: ``kill(0, ...)`` and ``kill(-1, ...)`` would
    address whole groups, so they are never tried.
    """
    if pid < 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, and belongs to someone else
    return True


def stop_process(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT_S) -> int:
    """Stop a child this process started, by its pid: ``SIGTERM``, then, if it has not ended
    within ``timeout`` seconds, ``SIGKILL``; it is reaped either way. Returns its exit status
    (``-signal.SIGKILL`` when it had to be killed, as :attr:`~subprocess.Popen.returncode`
    says). A child that had already ended is only reaped. Its pipes are left to the caller."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # a no-op when it has ended meanwhile
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
