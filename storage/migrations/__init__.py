"""The numbered SQL migrations, as files beside this module.

``NNNN_name.sql`` applies in every mode; ``NNNN_name.plain.sql`` and ``NNNN_name.timescale.sql``
are the two variants of one migration, one per :class:`~storage.modes.StorageMode`. Numbers
start at 1 and have no gaps; a migration, once released, never changes (its checksum is kept).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from storage.modes import StorageMode

_NAME = re.compile(r"(\d{4})_([a-z0-9_]+?)(?:\.(plain|timescale))?\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations(mode: StorageMode) -> list[Migration]:
    """Every migration of ``mode``, in order."""
    chosen: dict[int, Migration] = {}
    for version, name, variant, text in _files():
        if variant is not None and variant != mode.value:
            continue
        if version in chosen:
            raise ValueError(f"two migrations numbered {version}")
        chosen[version] = Migration(version, name, text)
    versions = sorted(chosen)
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration numbers must run 1, 2, 3... without gaps: {versions}")
    return [chosen[v] for v in versions]


def sql_text(version: int, mode: StorageMode) -> str:
    """The SQL of one migration in one mode (for reading and checking it)."""
    for migration in migrations(mode):
        if migration.version == version:
            return migration.sql
    raise KeyError(version)


def _files() -> list[tuple[int, str, str | None, str]]:
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _NAME.fullmatch(entry.name)
        if match is None:
            continue
        version, name, variant = int(match.group(1)), match.group(2), match.group(3)
        found.append((version, name, variant, entry.read_text(encoding="utf-8")))
    return found
