"""A database migrated part of the way, or by a plan of the test's own."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator

import pytest

from storage import StorageMode, migrate
from storage.migrations import Migration, migrations

MIGRATE_MODULE = importlib.import_module("storage.migrate")  # the package exports its function


def use_plan(
    monkeypatch: pytest.MonkeyPatch, plan: Callable[[StorageMode], list[Migration]]
) -> None:
    """Make ``migrate`` apply ``plan(mode)`` instead of the code's migrations."""
    monkeypatch.setattr(MIGRATE_MODULE, "migrations", plan)


@contextlib.contextmanager
def migrated_to(
    url: str, version: int, monkeypatch: pytest.MonkeyPatch, mode: StorageMode = StorageMode.PLAIN
) -> Iterator[None]:
    """Inside: the database at ``url`` migrated up to ``version`` only; after: the code's."""
    use_plan(monkeypatch, lambda mode: migrations(mode)[:version])
    assert migrate(url, mode).version == version
    yield
    monkeypatch.undo()
