"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
"""Real venue data beside the repository (``<repo>/../shared/data``); never copied into it."""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder; skips the test when it is absent."""
    folder = SHARED_DATA.resolve()
    if not folder.is_dir():
        pytest.skip(f"the shared data folder {folder} is absent (it lives beside the repository)")
    return folder
