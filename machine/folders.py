"""Per-user folders, after the XDG base directory convention."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

APP_FOLDER: Final = "ganntec-mdp"
"""The project's folder inside each base folder."""


def state_dir(*parts: str) -> Path:
    """``$XDG_STATE_HOME/ganntec-mdp/<parts>``, or ``~/.local/state/ganntec-mdp/<parts>``:
    data that outlives a run (a private server's files, a worker's local tables)."""
    return _base("XDG_STATE_HOME", ".local", "state").joinpath(APP_FOLDER, *parts)


def cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/ganntec-mdp/<parts>``, or ``~/.cache/ganntec-mdp/<parts>``: what
    can be fetched again (downloaded jars)."""
    return _base("XDG_CACHE_HOME", ".cache").joinpath(APP_FOLDER, *parts)


def _base(variable: str, *under_home: str) -> Path:
    """The folder ``variable`` names; the home's default where it is unset, empty or relative
    (the convention says to ignore a relative one)."""
    value = os.environ.get(variable, "")
    if os.path.isabs(value):
        return Path(value)
    return Path.home().joinpath(*under_home)
