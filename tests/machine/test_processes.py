"""Whether the process a pid file names still exists."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from machine import process_exists


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
