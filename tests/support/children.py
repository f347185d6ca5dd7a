"""Child processes of a test: ended however the test goes (killed with -9 while still running,
reaped, their pipes closed), and killed with -9 on purpose (:func:`kill_9`)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

Pipe = int | None
"""``subprocess.PIPE`` or None (the test's own stream)."""


@contextlib.contextmanager
def child(
    command: Sequence[str],
    *,
    stdout: Pipe = None,
    stderr: Pipe = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """``command`` running for the block (its pipes text); at the block's end it is killed
    with SIGKILL if still running, reaped, and its pipes are closed."""
    process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=cwd, env=env, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def kill_9(process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Send ``process`` SIGKILL and wait until it has ended of it (not before: it was
    running)."""
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout) == -signal.SIGKILL, f"ended {process.returncode} before kill -9"
