"""Per-user state and cache folders follow the XDG base directory convention."""

from __future__ import annotations

from pathlib import Path

import pytest

from machine import cache_dir, state_dir


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return tmp_path / "home"


def test_state_goes_to_the_state_home_when_one_is_set(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert state_dir("kafka") == tmp_path / "state" / "ganntec-mdp" / "kafka"
    assert state_dir("faust", "group") == tmp_path / "state" / "ganntec-mdp" / "faust" / "group"


def test_state_goes_under_the_home_by_default(home: Path) -> None:
    assert state_dir() == home / ".local" / "state" / "ganntec-mdp"
    assert state_dir("postgres") == home / ".local" / "state" / "ganntec-mdp" / "postgres"


def test_caches_go_to_the_cache_home_or_under_the_home(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cache_dir() == home / ".cache" / "ganntec-mdp"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cache_dir("jars") == tmp_path / "cache" / "ganntec-mdp" / "jars"


@pytest.mark.parametrize("value", ["", "relative/state"])
def test_an_empty_or_relative_base_folder_is_ignored(
    home: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", value)
    monkeypatch.setenv("XDG_CACHE_HOME", value)
    assert state_dir() == home / ".local" / "state" / "ganntec-mdp"
    assert cache_dir() == home / ".cache" / "ganntec-mdp"
