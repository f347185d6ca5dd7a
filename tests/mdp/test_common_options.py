"""Options several commands share: checked once, at the edge."""

from __future__ import annotations

import argparse
import importlib

import pytest

from access.verify import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from core.secrets import DatabaseUrl
from mdp.common_options import (
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
    [(["main-api"], "mdp.commands.main_api"), (["trading", "serve"], "mdp.commands.trading")],
)
def test_the_account_services_pass_issuer_and_audience_to_their_token_settings(
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
