"""A private PostgreSQL server in a data folder of its own: initdb, start, wait, stop.

What the embedded platform and the tests run when no ``DATABASE_URL`` is set. No magic: the
machine's ``initdb``/``pg_ctl`` (see :mod:`storage.pg_binaries`) initialise the folder once and
then start the server on ``127.0.0.1`` (a given port, or a free one) with its unix socket inside
the data folder; :meth:`PostgresServer.start` waits, within a bound, until it accepts
connections and gives back the connection URL.

Access is ``trust`` for connections from this machine only (the server listens on 127.0.0.1 and
its socket sits in the 0700 data folder): it is a private development server, not one to share.

Where TimescaleDB's library is installed beside the server programs, the server preloads it
(``shared_preload_libraries``, added to what ``postgresql.conf`` lists), so that the
migrations can use it: a server we run ourselves need not be configured by hand. Its telemetry
is off: nothing is reported to TimescaleDB's servers from a private server.

PostgreSQL refuses to run as root: as root, the server programs run as the ``postgres`` system
user and the data folder is handed to it, so every folder above it must be traversable by that
user (hence the default ``/var/lib/ganntec-mdp/postgres`` for root, never ``/root/...``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Final

import psycopg
from psycopg import sql

from machine import free_port, process_exists, state_dir
from storage.modes import TIMESCALEDB, preloads_timescaledb
from storage.pg_binaries import PostgresBinaries, find_binaries

SUPERUSER: Final = "postgres"
PRIVATE_DATABASE: Final = "mdp"
"""The database the embedded platform keeps its data in, on the private server."""
ROOT_STATE_DIR: Final = Path("/var/lib/ganntec-mdp")
LOG_NAME: Final = "mdp-server.log"
CONF_NAME: Final = "mdp.conf"
_SOCKET_PATH_MAX: Final = 100  # sun_path holds 107 bytes; ".s.PGSQL.65535" must fit too
_LOG_TAIL_LINES: Final = 30
_STALE_MEMORY_RETRIES: Final = 20
_LIBRARY_DIRS: Final = ("lib", "lib/postgresql")
"""Where a server's ``$libdir`` is, relative to its programs' folder: Debian's and Red Hat's
packages and a source build use ``lib``; Homebrew's ``lib/postgresql``."""
_LIBRARY_SUFFIXES: Final = (".so", ".dylib")


class PostgresServerError(RuntimeError):
    """The private server could not be set up, started or stopped (the message says why)."""


def default_data_dir() -> Path:
    """Where the private server keeps its data when no folder is given.

    Root: ``/var/lib/ganntec-mdp/postgres`` (the ``postgres`` user must reach it). Anyone else:
    ``$XDG_STATE_HOME/ganntec-mdp/postgres``, or ``~/.local/state/ganntec-mdp/postgres``.
    """
    if os.geteuid() == 0:
        return ROOT_STATE_DIR / "postgres"
    return state_dir("postgres")


class PostgresServer:
    """One private server on one data folder.

    ``start()`` initialises the folder if it is new (an initialised one is reused, data and
    all), starts the server and returns its URL; ``stop()`` stops it (``pg_ctl stop -m fast``).
    A server left running on the folder by an earlier process (say one that was killed) is
    adopted instead of started twice; ``started_here`` tells which happened, and leaving a
    ``with`` block stops the server only if this object started it. A stale ``postmaster.pid``
    left by a killed server does not prevent the next start.

    ``durable=False`` turns off fsync and synchronous commit: faster, for tests and benchmarks
    whose data may be lost in a machine crash. ``timescaledb_jobs=False`` keeps TimescaleDB
    from running its policies (compression, retention, refreshes) by itself, for tests that must
    not have chunks compressed or dropped under them (they run a job with ``CALL run_job``).
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        durable: bool = True,
        timescaledb_jobs: bool = True,
        start_timeout: float = 60.0,
        binaries: PostgresBinaries | None = None,
        run_as: str | None = None,
    ) -> None:
        self.data_dir = (data_dir or default_data_dir()).absolute()
        self._wanted_port = port
        self._durable = durable
        self._timescaledb_jobs = timescaledb_jobs
        self._start_timeout = start_timeout
        self._binaries = binaries
        if run_as is None and os.geteuid() == 0:
            run_as = "postgres"
        self._user = _user(run_as) if run_as is not None else None
        self._port: int | None = None
        self.started_here = False

    @property
    def port(self) -> int:
        if self._port is None:
            raise PostgresServerError("the server has not been started")
        return self._port

    @property
    def url(self) -> str:
        """URL of the ``postgres`` database (as the ``postgres`` superuser)."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_NAME

    def start(self) -> str:
        """Initialise if needed, start (or adopt) the server, wait for it; return its URL.

        Started again after :meth:`stop`, it listens on the same port as before (unless
        that is taken), so that its clients reconnect to the address they know."""
        binaries = self._binaries or find_binaries(prefer_major=self._initialised_major())
        self._prepare_folder(binaries)
        running = self._running_port()
        if running is not None and self._wanted_port in (None, running):
            self._port = running
            self._wait_until_accepting(time.monotonic() + self._start_timeout)
            return self.url
        if running is not None:
            self._pg_ctl(binaries, "stop", "-m", "fast", "-w")
        self._start(binaries)
        self.started_here = True
        return self.url

    def stop(self) -> None:
        """Stop the server on this folder (fast shutdown); nothing happens if none runs."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        binaries = self._binaries or find_binaries(prefer_major=self._initialised_major())
        done = self._pg_ctl(binaries, "stop", "-m", "fast", "-w", "-t", "60", check=False)
        if done.returncode != 0 and self._running_port() is not None:
            raise PostgresServerError(f"pg_ctl stop failed on {self.data_dir}: {done.stdout}")
        self.started_here = False

    def create_database(self, name: str) -> str:
        """Create database ``name`` unless it exists; return its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.started_here:
            self.stop()

    # -- the data folder ----------------------------------------------------------------------

    def _initialised_major(self) -> int | None:
        try:
            return int((self.data_dir / "PG_VERSION").read_text().strip())
        except (OSError, ValueError):
            return None

    def _prepare_folder(self, binaries: PostgresBinaries) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            self._check_reachable(self.data_dir.parent)
            self._check_reachable(binaries.bin_dir)
        major = self._initialised_major()
        if major is None:
            self._initdb(binaries)
        elif major != binaries.major:
            raise PostgresServerError(
                f"{self.data_dir} was initialised by PostgreSQL {major}, but the programs found"
                f" ({binaries.bin_dir}) are version {binaries.major}: install PostgreSQL {major},"
                " or move the folder away to start afresh"
            )
        self._write_settings(binaries)

    def _initdb(self, binaries: PostgresBinaries) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise PostgresServerError(
                f"{self.data_dir} is neither empty nor a PostgreSQL data folder (no PG_VERSION)"
            )
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._hand_over(self.data_dir)
        command = [
            str(binaries.initdb),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ]
        if not self._durable:
            command.append("--no-sync")
        done = self._run(command, timeout=300)
        if done.returncode != 0:
            raise PostgresServerError(f"initdb failed on {self.data_dir}:\n{done.stdout}")
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as out:
            out.write(
                f"\n# ganntec-mdp private server settings\ninclude_if_exists = '{CONF_NAME}'\n"
            )

    def _write_settings(self, binaries: PostgresBinaries) -> None:
        socket_dir = str(self.data_dir)
        if len(socket_dir) > _SOCKET_PATH_MAX:
            socket_dir = ""  # too long for a unix socket path: TCP on 127.0.0.1 only
        lines = [
            "# Written by ganntec-mdp at every start; edit postgresql.conf instead.",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = {_conf_string(socket_dir)}",
        ]
        if not self._durable:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        path = self.data_dir / CONF_NAME
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._hand_over(path)
        if timescaledb_installed(binaries):  # preloaded, besides what postgresql.conf lists
            preload = with_timescaledb(self._configured("shared_preload_libraries", binaries))
            with path.open("a", encoding="utf-8") as out:
                if preload is not None:
                    out.write(f"shared_preload_libraries = {_conf_string(preload)}\n")
                out.write("timescaledb.telemetry_level = off\n")  # a private server: no reports
                if not self._timescaledb_jobs:
                    out.write("timescaledb.max_background_workers = 0\n")

    def _configured(self, setting: str, binaries: PostgresBinaries) -> str:
        """A setting's value as the folder's configuration files give it (``postgres -C``)."""
        done = self._run(
            [str(binaries.postgres), "-D", str(self.data_dir), "-C", setting], timeout=30
        )
        if done.returncode != 0:
            raise PostgresServerError(
                f"the configuration of {self.data_dir} cannot be read:\n{done.stdout}"
            )
        printed = done.stdout.splitlines()
        return printed[-1].strip() if printed else ""  # the value is the last line printed

    def _hand_over(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _check_reachable(self, folder: Path) -> None:
        assert self._user is not None
        for part in [folder, *folder.parents]:
            if not _traversable_by(part, self._user):
                raise PostgresServerError(
                    f"the {self._user.pw_name} user, which runs the server when started as root,"
                    f" cannot reach {folder}: {part} is not traversable by it; choose a folder"
                    f" outside it (e.g. {ROOT_STATE_DIR / 'postgres'})"
                )

    # -- starting and stopping ----------------------------------------------------------------

    def _running_port(self) -> int | None:
        """The port of a live server on this folder, per its ``postmaster.pid``; else None.

        A pid file whose process is gone is left for PostgreSQL, which checks it together with
        the shared memory it names; one whose pid now belongs to another program (pids get
        reused after a reboot or in containers) is removed, or PostgreSQL would refuse to start.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        if not process_exists(pid):
            return None
        if not _is_postgres(pid):
            pid_file.unlink(missing_ok=True)
            return None
        return port

    def _start(self, binaries: PostgresBinaries) -> None:
        self._rotate_log()
        deadline = time.monotonic() + self._start_timeout
        for attempt in range(_STALE_MEMORY_RETRIES):
            again = self._port if attempt == 0 else None  # a restart keeps its port if it can
            port = self._wanted_port or again or free_port()
            timeout = max(1, int(deadline - time.monotonic()))
            done = self._pg_ctl(
                binaries,
                "start",
                "-w",
                "-t",
                str(timeout),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {port}",
                check=False,
            )
            if done.returncode == 0:
                self._port = port
                self._wait_until_accepting(deadline)
                return
            retry = "is still in use" in self._log_tail() or "could not bind" in self._log_tail()
            if not retry or time.monotonic() >= deadline or attempt == _STALE_MEMORY_RETRIES - 1:
                break
            time.sleep(0.25)  # the children of a killed server are still exiting
        raise PostgresServerError(
            f"the PostgreSQL server on {self.data_dir} did not start:\n{done.stdout}"
            f"last lines of {self.log_file}:\n{self._log_tail()}"
        )

    def _wait_until_accepting(self, deadline: float) -> None:
        last_error = "no attempt made"
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last_error = str(exc).strip()
            if time.monotonic() >= deadline:
                raise PostgresServerError(
                    f"the PostgreSQL server on {self.data_dir} (port {self._port}) did not accept"
                    f" connections in time: {last_error}\n"
                    f"last lines of {self.log_file}:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _rotate_log(self) -> None:
        if self.log_file.exists():
            shutil.move(self.log_file, self.log_file.with_name(LOG_NAME + ".1"))

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-_LOG_TAIL_LINES:])

    def _pg_ctl(
        self, binaries: PostgresBinaries, action: str, *options: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(binaries.pg_ctl), action, "-D", str(self.data_dir), *options]
        done = self._run(command, timeout=self._start_timeout + 30)
        if check and done.returncode != 0:
            raise PostgresServerError(f"pg_ctl {action} failed on {self.data_dir}:\n{done.stdout}")
        return done

    def _run(self, command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a server program (as the server's user), its output in a file, not a pipe.

        A pipe would be inherited by the postmaster that ``pg_ctl start`` leaves running, and
        reading it would then never end.
        """
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as output:
            try:
                if self._user is None:
                    code = subprocess.run(
                        command, stdout=output, stderr=output, env=env, timeout=timeout, check=False
                    ).returncode
                else:
                    code = subprocess.run(
                        command,
                        stdout=output,
                        stderr=output,
                        env=env | {"HOME": self._user.pw_dir, "USER": self._user.pw_name},
                        cwd=self.data_dir if self.data_dir.is_dir() else "/",
                        user=self._user.pw_uid,
                        group=self._user.pw_gid,
                        extra_groups=[],
                        timeout=timeout,
                        check=False,
                    ).returncode
            except subprocess.TimeoutExpired as exc:
                raise PostgresServerError(
                    f"{Path(command[0]).name} {command[1]} took longer than {timeout:.0f}s"
                ) from exc
            output.seek(0)
            return subprocess.CompletedProcess(command, code, output.read(), "")


def timescaledb_installed(binaries: PostgresBinaries) -> bool:
    """Whether TimescaleDB's library is in the ``$libdir`` of these server programs."""
    return any(
        (binaries.bin_dir.parent / folder / (TIMESCALEDB + suffix)).is_file()
        for folder in _LIBRARY_DIRS
        for suffix in _LIBRARY_SUFFIXES
    )


def with_timescaledb(shared_preload_libraries: str) -> str | None:
    """``shared_preload_libraries`` with TimescaleDB added (None: it is there already)."""
    if preloads_timescaledb(shared_preload_libraries):
        return None
    return ",".join(filter(None, [shared_preload_libraries.strip(), TIMESCALEDB]))


def _conf_string(value: str) -> str:
    """``value`` as a quoted string of ``postgresql.conf``."""
    return "'" + value.replace("'", "''") + "'"


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise PostgresServerError(
            f"PostgreSQL refuses to run as root and there is no {name!r} user to run it as:"
            f" create one (useradd --system {name}) or run as an unprivileged user"
        ) from exc


def _traversable_by(folder: Path, user: pwd.struct_passwd) -> bool:
    try:
        info = folder.stat()
    except OSError:
        return False
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    if info.st_uid == user.pw_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _is_postgres(pid: int) -> bool:
    """Whether ``pid`` runs a PostgreSQL server program (assumed so where that is unknowable)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return True  # no /proc (macOS), or the process just ended: leave it to PostgreSQL
    return os.path.basename(argv0).startswith((b"postgres", b"postmaster"))
