"""``mdp db migrate`` and ``mdp db status``."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdp.commands import db
from mdp.common_options import EXIT_FAILED
from storage import latest_version
from storage.pg_server import PostgresServer

ALL_VERSIONS = ", ".join(str(v) for v in range(1, latest_version() + 1))


def mdp_db(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="mdp")
    db.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["db", *argv])
    code: int = args.run(args)
    return code


@pytest.fixture
def no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


def test_migrate_applies_the_schema_then_finds_it_up_to_date(
    fresh_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mdp_db("migrate", "--database-url", fresh_database) == 0
    first = capsys.readouterr().out
    assert mdp_db("migrate", "--database-url", fresh_database) == 0
    again = capsys.readouterr().out
    assert f"schema version {latest_version()}" in first
    assert f"applied {ALL_VERSIONS}" in first
    assert "up to date" in again
    assert "mode: " in again


def test_migrate_reads_database_url_from_the_environment(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database)
    assert mdp_db("migrate") == 0
    assert "applied" in capsys.readouterr().out


def test_status_tells_an_unmigrated_database_to_migrate(
    fresh_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mdp_db("status", "--database-url", fresh_database) == 0
    assert "schema version 0 of" in capsys.readouterr().out
    mdp_db("migrate", "--database-url", fresh_database, "--mode", "plain")
    capsys.readouterr()
    assert mdp_db("status", "--database-url", fresh_database) == 0
    assert capsys.readouterr().out.strip() == (
        f"schema version {latest_version()} of {latest_version()}, plain mode"
    )


@pytest.mark.usefixtures("no_database_url")
def test_an_unreachable_database_fails_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    assert mdp_db("migrate", "--database-url", url) == EXIT_FAILED
    assert capsys.readouterr().err.startswith("mdp db: error:")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mdp-test-db-"))
    yield path
    PostgresServer(path).stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.usefixtures("no_database_url")
def test_without_a_url_the_private_server_is_migrated_and_stopped_again(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mdp_db("migrate", "--data-dir", str(data_dir)) == 0
    captured = capsys.readouterr()
    assert f"using the private server in {data_dir}" in captured.err
    assert f"applied {ALL_VERSIONS}" in captured.out
    assert not (data_dir / "postmaster.pid").exists()
    assert mdp_db("status", "--data-dir", str(data_dir)) == 0
    assert f"schema version {latest_version()} of" in capsys.readouterr().out
