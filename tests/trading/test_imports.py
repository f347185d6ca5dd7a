"""The trading domain is pure: ``trading.domain`` imports ``core`` and nothing of the
platform's services, and neither it nor ``core.trading_events`` imports anything that does
I/O or runs an event loop. Its modules import each other without a circle. The order saga's
core (``trading/service``'s book, saga and venue state) is as pure, over the domain."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.test_import_graph import REPO, find_circle, import_graph

PURE = [
    *sorted((REPO / "trading" / "domain").rglob("*.py")),
    *(REPO / "core" / name for name in ("trading_events.py", "positions.py", "exact.py")),
]
THIRD_PARTY = {"msgspec"}
"""What a pure module may import besides the standard library and ``core``."""
NO_IO = {"asyncio", "socket", "selectors", "threading", "subprocess", "os", "io", "time",
         "pathlib", "shutil", "tempfile", "logging", "random", "datetime"}  # fmt: skip
"""Standard modules that do I/O, keep time or run loops: the domain gets them as arguments."""


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", PURE, ids=lambda path: str(path.relative_to(REPO)))
def test_the_trading_domain_imports_only_core_and_pure_libraries(path: Path) -> None:
    top = {name.split(".")[0] for name in imports(path)}
    ours = {name for name in imports(path) if name.split(".")[0] in {"trading", "core"}}
    allowed = ("core", "trading.domain") if "trading" in path.parts else ("core",)
    assert {name for name in ours if not name.startswith(allowed)} == set()
    foreign = top - {"core", "trading", "__future__"} - set(sys.stdlib_module_names)
    assert foreign <= THIRD_PARTY
    assert top & NO_IO == set()


SAGA_CORE = [
    REPO / "trading" / "service" / name for name in ("book.py", "saga.py", "venue_state.py")
]
SAGA_CORE_MAY_IMPORT = ("core", "trading.domain", "trading.store.codec", "trading.service.")


@pytest.mark.parametrize("path", SAGA_CORE, ids=lambda path: str(path.relative_to(REPO)))
def test_the_order_saga_is_sans_io(path: Path) -> None:
    """The saga decides; the shell (``trading/service/shell.py``) stores, routes and calls
    the venue. The core imports the domain and no I/O."""
    ours = {name for name in imports(path) if name.split(".")[0] in {"trading", "core"}}
    assert {name for name in ours if not name.startswith(SAGA_CORE_MAY_IMPORT)} == set()
    assert {name for name in ours if name.startswith("trading.service.")} <= {
        f"trading.service.{p.stem}" for p in SAGA_CORE
    }
    top = {name.split(".")[0] for name in imports(path)}
    assert top & NO_IO == set()


def test_the_trading_domain_has_no_import_circle() -> None:
    assert find_circle(import_graph("trading/domain")) is None


def test_the_service_has_no_import_circle() -> None:
    assert find_circle(import_graph("trading/service")) is None


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "trading" / "store").rglob("*.py")),
    ids=lambda path: str(path.relative_to(REPO)),
)
def test_the_event_store_knows_nothing_of_orders_or_the_service(path: Path) -> None:
    """The store is generic over a fold; only its wire names ``trading.events``' record."""
    ours = {name for name in imports(path) if name.startswith("trading.")}
    assert {name for name in ours if not name.startswith("trading.store")} == set()
