"""The read models' core is pure: ``trading.readmodels.projection`` imports ``core`` and
``trading.domain`` only, nothing that does I/O; the SQL and the event loop stay in the shell
modules. Nothing below the read models (the domain, the store, the paper venue) imports them,
and they import each other without a circle."""

from __future__ import annotations

import sys

from tests.test_import_graph import REPO, find_circle, import_graph
from tests.trading.test_imports import NO_IO, THIRD_PARTY, imports

PROJECTION = REPO / "trading" / "readmodels" / "projection.py"


def test_the_projection_imports_only_core_the_domain_and_pure_libraries() -> None:
    ours = {name for name in imports(PROJECTION) if name.split(".")[0] in {"trading", "core"}}
    assert {name for name in ours if not name.startswith(("core", "trading.domain"))} == set()
    top = {name.split(".")[0] for name in imports(PROJECTION)}
    assert top - {"core", "trading", "__future__"} - set(sys.stdlib_module_names) <= THIRD_PARTY
    assert top & NO_IO == set()


def test_nothing_below_the_read_models_imports_them() -> None:
    for package in ("domain", "store", "paper"):
        for path in (REPO / "trading" / package).rglob("*.py"):
            assert not any(name.startswith("trading.readmodels") for name in imports(path)), path


def test_the_read_models_have_no_import_circle() -> None:
    assert find_circle(import_graph("trading/readmodels")) is None
