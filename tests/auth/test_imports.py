"""``auth`` imports ``core``, ``machine``, ``streams.bus``, its loops' failure rule
(``streams.rounds``), storage's interfaces and the shared health answers and catch-all
(``web.health``, ``web.internal_errors``), never another service, and its modules import each other
without a circle."""

from __future__ import annotations

import ast

from tests.test_import_graph import REPO, find_circle, import_graph

ALLOWED = (
    "access",
    "auth",
    "core",
    "machine",
    "streams.bus",
    "streams.rounds",
    "storage.unavailable",
    "web.health",
    "web.internal_errors",
)


def test_auth_has_no_import_circle() -> None:
    assert find_circle(import_graph("auth")) is None


def test_auth_imports_no_other_service() -> None:
    ours = {
        "access",
        "auth",
        "core",
        "machine",
        "streams",
        "storage",
        "charting",
        "ws_gateway",
        "ingest",
        "mdp",
        "web",
    }
    found = set()
    for path in (REPO / "auth").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    internal = {name for name in found if name.split(".")[0] in ours}
    assert {name for name in internal if not name.startswith(ALLOWED)} == set()
