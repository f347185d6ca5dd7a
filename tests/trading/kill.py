"""kill -9 of a child process at the point it names: it prints ``ready`` (and what it was
doing) there and sleeps until killed."""

from __future__ import annotations

import subprocess
import sys

from tests.support.children import child, kill_9


def kill_when_ready(module: str, *args: str) -> list[str]:
    """Run ``python -m module args...``, SIGKILL it once it prints its ``ready`` line, and
    return the words of that line after ``ready``."""
    with child([sys.executable, "-m", module, *args], stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        ready, *rest = process.stdout.readline().split()
        assert ready == "ready"
        kill_9(process)
        return rest
