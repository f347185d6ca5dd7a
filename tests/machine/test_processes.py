"""Whether the process a pid file names still exists; stopping a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from machine import process_exists, stop_process


def test_a_running_process_exists() -> None:
    assert process_exists(os.getpid())


def test_a_process_that_ended_and_was_reaped_does_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_exists(child.pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see a zombie")
def test_a_zombie_exists_until_it_is_reaped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not end"
            time.sleep(0.01)
        assert process_exists(child.pid)  # its pid is still taken: PostgreSQL sees the same
    finally:
        child.wait()
    assert not process_exists(child.pid)


@pytest.mark.parametrize("pid", [0, -1, -os.getpid()], ids=["0", "-1", "-own-pid"])
def test_pids_that_address_process_groups_are_no_process(pid: int) -> None:
    assert not process_exists(pid)


def child(handling: str) -> subprocess.Popen[str]:
    """A child that sets ``SIGTERM`` to ``handling`` (``ignore``, ``exit`` or ``default``),
    says so and sleeps; returned once it has said so (its handler is in place)."""
    program = f"""
import signal, sys, time
handlers = {{"ignore": signal.SIG_IGN, "exit": lambda *_: sys.exit(3), "default": signal.SIG_DFL}}
signal.signal(signal.SIGTERM, handlers[{handling!r}])
print("ready", flush=True)
time.sleep(60)
"""
    process = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    process.stdout.close()
    return process


def test_a_child_that_ignores_sigterm_is_killed_once_the_timeout_has_passed() -> None:
    process = child("ignore")
    started = time.monotonic()
    try:
        assert stop_process(process, timeout=0.5) == -signal.SIGKILL
        assert 0.5 <= time.monotonic() - started < 10
        assert not process_exists(process.pid)  # reaped too
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("handling", "code"), [("exit", 3), ("default", -signal.SIGTERM)], ids=["handled", "default"]
)
def test_a_child_that_ends_on_sigterm_is_not_killed(handling: str, code: int) -> None:
    process = child(handling)
    started = time.monotonic()
    assert stop_process(process, timeout=30) == code  # its own status, not SIGKILL's
    assert time.monotonic() - started < 10


def test_a_child_that_has_ended_is_only_reaped() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(4)"])
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped yet
    started = time.monotonic()
    assert stop_process(process, timeout=5) == 4
    assert time.monotonic() - started < 1
