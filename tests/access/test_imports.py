"""``access`` sits at the bottom beside ``core``: it imports ``core`` only, so that every
service may import it, and its modules import each other without a circle."""

from __future__ import annotations

import ast

from tests.test_import_graph import REPO, find_circle, import_graph

OURS = ("access", "auth", "charting", "core", "edge", "ingest", "machine", "mdp", "storage",
        "streams", "ws_gateway")  # fmt: skip


def test_access_has_no_import_circle() -> None:
    assert find_circle(import_graph("access")) is None


def test_access_imports_core_only() -> None:
    found = set()
    for path in (REPO / "access").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
    assert found & set(OURS) <= {"access", "core"}
