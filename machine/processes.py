"""Whether the process a pid file names still exists."""

from __future__ import annotations

import os


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
