"""Secrets never print: not by str, repr, f-strings, logging or a settings object's repr."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from core.secrets import DatabaseUrl, Secret, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://root:secretpw@127.0.0.1:5432/x", "postgresql://root:***@127.0.0.1:5432/x"),
        ("postgres://root@db/x", "postgres://root@db/x"),
        ("postgresql://db/x", "postgresql://db/x"),
        (
            "postgresql://u:p%40secretpw@h1:5432,h2:5433/db?sslmode=require&password=secretpw&a=1",
            "postgresql://u:***@h1:5432,h2:5433/db?sslmode=require&password=***&a=1",
        ),
        ("host=db user=u password=secretpw dbname=x", "host=db user=u password=*** dbname=x"),
        ("host=db password = 'secret pw\\' x' dbname=x", "host=db password = *** dbname=x"),
    ],
)
def test_a_database_url_shows_everything_but_its_password(url: str, shown: str) -> None:
    database = DatabaseUrl(url)
    assert str(database) == redact_url(url) == shown
    assert f"{database}" == shown
    assert repr(database) == f"DatabaseUrl({shown!r})"
    assert database.reveal() == url


def test_a_secret_shows_only_a_mask() -> None:
    token = Secret("secretpw")
    assert (str(token), repr(token), f"{token}") == ("***", "Secret('***')", "***")
    assert token.reveal() == "secretpw"


def test_settings_holding_secrets_do_not_leak_them_in_repr_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @dataclass(frozen=True)
    class Settings:
        database_url: DatabaseUrl
        api_key: Secret

    settings = Settings(DatabaseUrl("postgresql://app:secretpw@db/x"), Secret("secretpw"))
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("starting with %s / %r", settings, settings)
    assert "secretpw" not in repr(settings)
    assert "secretpw" not in caplog.text
    assert "app:***@db" in caplog.text


def test_an_empty_database_url_is_refused() -> None:
    with pytest.raises(ValueError, match="the database URL is empty"):
        DatabaseUrl("  ")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://root:secretpw@[::1/x", "postgresql://root:***@[::1/x"),
        ("postgresql:///x?host=/tmp&password=secretpw", "postgresql:///x?host=/tmp&password=***"),
        ("postgresql://root:secretpw@db", "postgresql://root:***@db"),
    ],
)
def test_an_address_too_malformed_to_parse_still_prints_masked(url: str, shown: str) -> None:
    assert str(DatabaseUrl(url)) == shown


@pytest.mark.parametrize(
    ("url", "spellings"),
    [
        ("postgresql://u:pa%25ss@db/x", ["pa%25ss", "pa%ss"]),
        ("postgresql://u:secret pw@db/x", ["secret pw"]),
        ("postgresql://db/x?password=se%26cret", ["se%26cret", "se&cret"]),
        ("host=db password='it\\'s secret' dbname=x", ["it's secret", "'it\\'s secret'"]),
    ],
)
def test_scrub_masks_the_password_in_every_spelling_a_driver_may_quote(
    url: str, spellings: list[str]
) -> None:
    database = DatabaseUrl(url)
    for spelling in spellings:
        assert database.scrub(f'invalid token: "{spelling}" in the address') == (
            'invalid token: "***" in the address'
        )
