"""The paper venue is pure: ``trading.paper`` imports ``core``, ``trading.domain`` and itself,
nothing that does I/O, keeps time or runs an event loop, and no circle."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.test_import_graph import REPO, find_circle, import_graph
from tests.trading.test_imports import NO_IO, THIRD_PARTY, imports

PAPER = sorted((REPO / "trading" / "paper").rglob("*.py"))


@pytest.mark.parametrize("path", PAPER, ids=lambda path: str(path.relative_to(REPO)))
def test_the_paper_venue_imports_only_core_the_domain_and_pure_libraries(path: Path) -> None:
    ours = {name for name in imports(path) if name.split(".")[0] in {"trading", "core"}}
    allowed = ("core", "trading.domain", "trading.paper")
    assert {name for name in ours if not name.startswith(allowed)} == set()
    top = {name.split(".")[0] for name in imports(path)}
    assert top - {"core", "trading", "__future__"} - set(sys.stdlib_module_names) <= THIRD_PARTY
    assert top & NO_IO == set()


def test_the_paper_venue_has_no_import_circle() -> None:
    assert find_circle(import_graph("trading/paper")) is None
