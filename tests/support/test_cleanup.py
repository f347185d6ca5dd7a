"""What the test suite starts is stopped however a run ends: a server in a session of its own
(as ``mdp kafka start`` and ``pg_ctl start`` leave the broker and PostgreSQL) is stopped by
its leash (tests/support/leash_watch.py) when the test process is killed, and a run ended by SIGTERM
(``timeout``) tears its fixtures down. A stand-in server (a sleeping Python with a marker on
its command line) takes the place of the real ones, which take seconds to start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from machine.processes import process_exists

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 20.0


def stand_in(marker: str) -> subprocess.Popen[bytes]:
    """A server in a session of its own, ``marker`` on its command line."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", marker], start_new_session=True
    )


def owner(pid: int, marker: str) -> subprocess.Popen[str]:
    """A test process that leashes ``pid`` and waits to be killed."""
    code = textwrap.dedent(f"""
        import time
        from tests.support.leash import leash
        leash({pid}, {marker!r})
        print("leashed", flush=True)
        time.sleep(120)
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "leashed\n"
    return process


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """End a process this test started, by its pid, and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=WAIT_S)


def test_a_leashed_server_is_stopped_when_the_test_process_is_killed() -> None:
    marker = f"/tmp/mdp-test-kafka-{uuid.uuid4().hex}"
    server = stand_in(marker)
    test = owner(server.pid, marker)
    try:
        assert server.poll() is None
        test.kill()  # no finally, no teardown
        assert server.wait(WAIT_S) == -signal.SIGTERM
    finally:
        stop(test)
        stop(server)


def test_a_leash_never_stops_a_process_that_is_not_its_server() -> None:
    """The pid no longer names the server (it ended; the id was given to another process)."""
    server = stand_in("some other program")
    test = owner(server.pid, f"/tmp/mdp-test-kafka-{uuid.uuid4().hex}")
    try:
        test.kill()
        with pytest.raises(subprocess.TimeoutExpired):
            server.wait(2.0)
    finally:
        stop(test)
        stop(server)


SUITE = """
import subprocess, sys
from pathlib import Path
import pytest
from tests.support.interrupts import end_as_interrupted

HANDLED = {handled}


def pytest_configure(config):
    if HANDLED:
        end_as_interrupted()


@pytest.fixture(scope="session")
def server():
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    Path("server.pid").write_text(str(process.pid))
    try:
        yield process
    finally:
        process.terminate()
        process.wait(10)
        Path("torn-down").write_text("yes")
"""
LONG_TEST = """
import time


def test_runs_long(server):
    time.sleep(120)
"""


@pytest.mark.parametrize("handled", [True, False], ids=["as-interrupt", "python-default"])
def test_a_run_ended_by_sigterm_tears_its_fixtures_down(tmp_path: Path, handled: bool) -> None:
    """With the handler (tests/conftest.py installs it), SIGTERM in the middle of a test
    stops the fixture's server; with Python's default it would outlive the run."""
    (tmp_path / "conftest.py").write_text(SUITE.format(handled=handled))
    (tmp_path / "test_long.py").write_text(LONG_TEST)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
            str(tmp_path), "-c", os.devnull, str(tmp_path / "test_long.py"),
        ],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    pid_file = tmp_path / "server.pid"
    server_pid = None
    try:
        deadline = time.monotonic() + WAIT_S
        while not pid_file.exists():
            assert run.poll() is None, run.communicate()[0]
            assert time.monotonic() < deadline, "the fixture never started its server"
            time.sleep(0.05)
        server_pid = int(pid_file.read_text())
        time.sleep(0.5)  # in the test's sleep
        run.send_signal(signal.SIGTERM)
        output = run.communicate(timeout=WAIT_S)[0].decode()
        if handled:
            assert (tmp_path / "torn-down").exists(), output
            assert not process_exists(server_pid), output
            assert run.returncode == pytest.ExitCode.INTERRUPTED, output
        else:
            assert run.returncode == -signal.SIGTERM
            assert not (tmp_path / "torn-down").exists()
            assert process_exists(server_pid), "Python's default ends without a teardown"
    finally:
        stop(run)
        if server_pid is not None and process_exists(server_pid):
            os.kill(server_pid, signal.SIGKILL)  # the stand-in the unhandled run left, by pid
