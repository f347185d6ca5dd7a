"""kill -9 of a child process at the point it names: it prints ``ready`` (and what it was
doing) there and sleeps until killed."""

from __future__ import annotations

import signal
import subprocess
import sys


def kill_when_ready(module: str, *args: str) -> list[str]:
    """Run ``python -m module args...``, SIGKILL it once it prints its ``ready`` line, and
    return the words of that line after ``ready``."""
    child = subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        ready, *rest = child.stdout.readline().split()
        assert ready == "ready"
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
        return rest
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
