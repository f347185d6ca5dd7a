"""Options several commands share: checked once, at the edge."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from access.verify import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from core.secrets import DatabaseUrl
from mdp.common_options import (
    MAX_SECRET_FILE_BYTES,
    add_database_option,
    add_write_buffer_option,
    start_refused,
    token_settings,
    write_buffer_of,
)


def buffer(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_write_buffer_option(parser)
    return write_buffer_of(parser.parse_args(list(argv)))


def test_the_write_buffer_is_given_in_mib() -> None:
    assert buffer("--write-buffer", "1.5") == 3 * 2**19
    assert buffer() == 64 * 2**20


@pytest.mark.parametrize("size", ["0", "-1", "inf", "nan", "1e-9"])
def test_a_write_buffer_of_no_finite_bytes_is_refused(size: str) -> None:
    with pytest.raises(ValueError, match="--write-buffer must be a size in MiB, more than 0"):
        buffer("--write-buffer", size)


@pytest.mark.parametrize(
    ("command", "module"),
    [
        (["main-api"], "mdp.commands.main_api"),
        (["trading", "serve"], "mdp.commands.trading"),
        (["api"], "mdp.commands.api"),
        (["gateway"], "mdp.commands.gateway"),
    ],
)
def test_the_token_checking_services_pass_issuer_and_audience_to_their_token_settings(
    command: list[str], module: str
) -> None:
    parser = argparse.ArgumentParser(prog="mdp")
    importlib.import_module(module).add_parser(parser.add_subparsers(dest="command"))
    given = [
        "--jwks-url",
        "http://127.0.0.1:1/jwks.json",
        "--issuer",
        "iss-x",
        "--audience",
        "aud-y",
    ]
    tokens = token_settings(parser.parse_args([*command, *given]))
    assert (tokens.jwks_url, tokens.issuer, tokens.audience) == (
        "http://127.0.0.1:1/jwks.json", "iss-x", "aud-y",
    )  # fmt: skip
    defaults = token_settings(parser.parse_args(command))
    assert (defaults.issuer, defaults.audience) == (DEFAULT_ISSUER, DEFAULT_AUDIENCE)


@pytest.mark.parametrize(
    ("database_url", "jwks_url", "told"),
    [
        (None, "http://127.0.0.1:1/jwks.json", "error: no database: give --database-url"),
        (DatabaseUrl("postgresql://u@127.0.0.1:1/db"), None, "error: X checks every token"),
    ],
)
def test_a_service_without_a_database_or_a_key_set_is_refused_at_start(
    database_url: DatabaseUrl | None, jwks_url: str | None, told: str
) -> None:
    said: list[str] = []
    args = argparse.Namespace(database_url=database_url, jwks_url=jwks_url)
    assert start_refused(args, said.append, "X") == 2
    assert len(said) == 1
    assert said[0].startswith(told)


def database_url_of(*argv: str) -> DatabaseUrl | None:
    parser = argparse.ArgumentParser()
    add_database_option(parser, "nothing")
    given: DatabaseUrl | None = parser.parse_args(list(argv)).database_url
    return given


SECRET_URL = "postgresql://mdp:s3cret-pw@db.internal:5432/mdp"


def test_the_database_url_comes_from_the_file_database_url_file_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    secret = tmp_path / "database_url"
    secret.write_text(SECRET_URL + "\n")
    monkeypatch.setenv("DATABASE_URL_FILE", str(secret))
    assert database_url_of() == DatabaseUrl(SECRET_URL)
    # the variable itself, and the option, come first
    monkeypatch.setenv("DATABASE_URL", "postgresql://other@127.0.0.1/x")
    assert database_url_of() == DatabaseUrl("postgresql://other@127.0.0.1/x")
    assert database_url_of("--database-url", "postgresql://given@h/y") == DatabaseUrl(
        "postgresql://given@h/y"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the secret file"),
        (b"x" * (MAX_SECRET_FILE_BYTES + 1), f"is over {MAX_SECRET_FILE_BYTES} bytes"),
        (b"postgresql://mdp:\xff@h/x", "is not UTF-8 text"),
    ],
)
def test_a_secret_file_that_cannot_be_used_is_a_clear_error_that_shows_none_of_it(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    message: str,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    secret = tmp_path / "database_url"
    if content is not None:
        secret.write_bytes(content)
    monkeypatch.setenv("DATABASE_URL_FILE", str(secret))
    with pytest.raises(SystemExit):
        database_url_of()
    err = capsys.readouterr().err
    assert message in err
    assert str(secret) in err
    assert "xxxx" not in err
    assert "mdp:" not in err
