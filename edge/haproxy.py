"""HAProxy as a child process: write the configuration, check it, start, reload, stop.

The machine's ``haproxy`` (Debian's package, 2.6) runs in master-worker mode in the
foreground (``-W -db``) as a child of this process, with its configuration and error pages
in a folder of its own. :meth:`Haproxy.start` checks the configuration first (``haproxy -c``),
so a bad one is refused with HAProxy's own report rather than half started, then waits, within
a bound, until the admin frontend answers. :meth:`Haproxy.reload` writes a new configuration,
checks it and signals the master (``SIGUSR2``): connections in flight finish on the old
workers, WebSockets included. :meth:`Haproxy.stop` asks for a soft stop and kills what is
left after a bound.

HAProxy runs in a session of its own (a terminal's Ctrl-C goes to this process, which stops it
in order) and on a leash, :mod:`edge.watchdog`: should this process end without stopping it,
``kill -9`` included, the watchdog stops HAProxy within its grace.

An :class:`EdgeError` says what failed in one line; HAProxy's own report (a refused
configuration, its last words before it stopped) goes to its log, which the message names.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from edge import watchdog
from edge.config import EdgeSettings, error_files, render

CONFIG_NAME: Final = "haproxy.cfg"
LOG_NAME: Final = "haproxy.log"
HOW_TO_INSTALL: Final = (
    "HAProxy is not installed: the edge needs Debian's haproxy (2.6 or later):"
    " apt-get install haproxy (scripts/up and scripts/test do it when run as root)"
)
_LOG_TAIL_BYTES: Final = 16 * 1024
_ALERT_CHARS: Final = 400
_KEY_FILE_MAX: Final = 16 * 1024
_PEM_PUBLIC_KEY: Final = b"-----BEGIN PUBLIC KEY-----"
_SIGNAL_AGAIN_S: Final = 0.5
_RELOAD_AGAIN_S: Final = 2.0
"""How long a reload may go unseen (the new generation not served) before its signal is sent
again: a master that has just re-executed itself for the reload before may not have its
handlers yet, and then the signal is lost (a CI run waited out the whole start timeout so)."""
LEASH_GRACE_S: Final = 5.0
"""How long HAProxy has to stop on SIGTERM once its starter is gone, before SIGKILL."""


class EdgeError(RuntimeError):
    """HAProxy could not be found, configured, started or reloaded (the message says why)."""


def find_haproxy() -> Path:
    """The ``haproxy`` program: ``$HAPROXY``, else the one on ``PATH`` or in ``/usr/sbin``."""
    named = os.environ.get("HAPROXY")
    if named:
        if not os.access(named, os.X_OK):
            raise EdgeError(f"HAPROXY names {named}, which is not an executable program")
        return Path(named)
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise EdgeError(HOW_TO_INSTALL)
    return Path(found)


class Haproxy:
    """One HAProxy on one folder, started by this process."""

    def __init__(
        self,
        folder: Path,
        *,
        program: Path | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.folder = folder.absolute()
        self._program = program
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._leash: subprocess.Popen[bytes] | None = None
        self._settings: EdgeSettings | None = None
        self._generation = 0

    @property
    def config_file(self) -> Path:
        return self.folder / CONFIG_NAME

    @property
    def log_file(self) -> Path:
        return self.folder / LOG_NAME

    @property
    def pid(self) -> int | None:
        """The master's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def url(self) -> str:
        settings = self._require_settings()
        return f"http://{_host(settings.host)}:{settings.port}"

    def metrics_url(self) -> str:
        settings = self._require_settings()
        return f"http://{_host(settings.admin_host)}:{settings.admin_port}/metrics"

    def start(self, settings: EdgeSettings) -> None:
        """Write and check the configuration, start HAProxy and wait until it answers."""
        if self.pid is not None:
            raise EdgeError("this edge is running already: reload it instead")
        program = self._program or find_haproxy()
        self._write(settings, program)
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [str(program), "-W", "-db", "-f", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,
            )
        self._leash = subprocess.Popen(
            [sys.executable, "-I", watchdog.__file__, str(self._process.pid), str(LEASH_GRACE_S)],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        self._settings = settings
        try:
            self._wait_for_generation(time.monotonic() + self._start_timeout)
        except EdgeError:
            self.stop()
            raise

    def reload(self, settings: EdgeSettings) -> None:
        """Replace the configuration of the running HAProxy without dropping connections;
        return once new connections are served by it (old ones finish on the old workers)."""
        process = self._process
        if process is None or process.poll() is not None:
            raise EdgeError("the edge is not running: start it first")
        self._write(settings, self._program or find_haproxy())
        self._settings = settings
        process.send_signal(signal.SIGUSR2)
        self._wait_for_generation(
            time.monotonic() + self._start_timeout,
            again=lambda: process.send_signal(signal.SIGUSR2),  # same file: reloads it once more
        )

    def stop(self) -> None:
        """Soft stop (``SIGUSR1``: finish what is in flight), then kill after the bound."""
        process, leash = self._process, self._leash
        self._process = self._leash = None
        if process is not None and process.poll() is None:
            deadline = time.monotonic() + self._stop_timeout
            while True:
                # again and again: a master that has just re-executed itself for a reload
                # may not have its handlers yet, and then the signal is lost
                process.send_signal(signal.SIGUSR1)
                try:
                    process.wait(min(_SIGNAL_AGAIN_S, max(0.0, deadline - time.monotonic())))
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= deadline:
                        process.kill()
                        process.wait()
                        break
        if leash is not None:
            assert leash.stdin is not None
            leash.stdin.close()  # HAProxy has ended: the watchdog sees it and ends too
            leash.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------------

    def _require_settings(self) -> EdgeSettings:
        if self._settings is None:
            raise EdgeError("the edge has not been started")
        return self._settings

    def _write(self, settings: EdgeSettings, program: Path) -> None:
        """Write the error pages and the configuration, then have HAProxy check it."""
        if settings.error_dir != self.folder:
            raise EdgeError(f"the error pages must live in the edge's folder {self.folder}")
        for key in settings.tokens.keys if settings.tokens is not None else ():
            _check_key_file(key.kid, key.pem)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path, text in error_files(settings).items():
            path.write_text(text)
        settings.revocation_map.touch(mode=0o600)  # HAProxy needs the file; its owner fills it
        candidate = self.folder / (CONFIG_NAME + ".new")
        self._generation += 1
        candidate.write_text(render(settings, self._generation))
        checked = subprocess.run(
            [str(program), "-c", "-f", str(candidate)],
            cwd=self.folder,
            capture_output=True,
            text=True,
            check=False,
        )
        if checked.returncode != 0:
            report = (checked.stderr or checked.stdout).strip()
            self._log(f"HAProxy refused the configuration {candidate}:\n{report}")
            raise EdgeError(
                f"HAProxy refused the edge's configuration {candidate}: {_first_alert(report)}"
                f" (the whole report is in {self.log_file})"
            )
        candidate.replace(self.config_file)

    def _wait_for_generation(
        self, deadline: float, again: Callable[[], None] | None = None
    ) -> None:
        """Until the admin frontend answers with the configuration written last; ``again``
        is called each :data:`_RELOAD_AGAIN_S` it does not (a reload's signal sent again)."""
        settings = self._require_settings()
        probe = f"http://{_host(settings.admin_host)}:{settings.admin_port}/generation"
        wanted = str(self._generation).encode()
        next_again = time.monotonic() + _RELOAD_AGAIN_S
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                raise EdgeError(f"HAProxy stopped: {self._last_alert()} (see {self.log_file})")
            try:
                with urllib.request.urlopen(probe, timeout=1) as answer:
                    if answer.read().strip() == wanted:
                        return
            except (urllib.error.URLError, OSError):
                pass
            now = time.monotonic()
            if now > deadline:
                raise EdgeError(
                    f"HAProxy did not serve its configuration {self._generation} in time:"
                    f" {self._last_alert()} (see {self.log_file})"
                )
            if again is not None and now >= next_again:
                again()
                next_again = now + _RELOAD_AGAIN_S
            time.sleep(0.05)

    def _last_alert(self) -> str:
        """The last alert in HAProxy's log, on one line."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                tail = log.read().decode(errors="replace")
        except OSError:
            return "its log cannot be read"
        return _first_alert("\n".join(reversed(tail.splitlines())))

    def _log(self, text: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self.log_file.open("a") as log:
            log.write(text.rstrip() + "\n")


def _first_alert(report: str) -> str:
    """The first ``[ALERT]`` line of a report of HAProxy (else its first line), on one line."""
    lines = [line.strip() for line in report.splitlines() if line.strip()]
    alerts = [line for line in lines if line.startswith("[ALERT]")]
    chosen = (alerts or lines or ["no report"])[0]
    return " ".join(chosen.split())[:_ALERT_CHARS]


def _check_key_file(kid: str, path: Path) -> None:
    """HAProxy reads key files only when a token comes: check them now, while the running
    configuration can still be kept."""
    try:
        with path.open("rb") as file:
            head = file.read(_KEY_FILE_MAX + 1)
    except FileNotFoundError:
        raise EdgeError(f"the public key file of {kid} is missing: {path}") from None
    except OSError as exc:
        raise EdgeError(f"the public key file of {kid} cannot be read: {exc}") from None
    if len(head) > _KEY_FILE_MAX or not head.lstrip().startswith(_PEM_PUBLIC_KEY):
        raise EdgeError(f"the file of {kid} holds no PEM public key: {path}")


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
