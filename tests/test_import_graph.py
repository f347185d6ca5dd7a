"""The modules of a package import each other without a circle, deferred imports included.

A circle hidden in a function body (``from core.engine import checkpoint`` inside a method)
still ties the two modules together; the walk reads every ``import`` in a module, wherever it
sits. ``from package import module`` counts the module named; a package's ``__init__`` counts
only where a name is taken from it.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.AST, modules: set[str]) -> set[str]:
    """The modules among ``modules`` that one statement imports by name."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names} & modules
    if not isinstance(node, ast.ImportFrom) or node.module is None or node.level:
        return set()
    found = set()
    for alias in node.names:
        submodule = f"{node.module}.{alias.name}"
        found.add(submodule if submodule in modules else node.module)
    return found & modules


def import_graph(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` → the modules of ``package`` it imports."""
    paths = {module_name(path): path for path in sorted((REPO / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = {
            target for node in ast.walk(tree) for target in imported(node, set(paths))
        } - {name}
    return graph


def find_circle(graph: dict[str, set[str]]) -> tuple[str, ...] | None:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return tuple(exc.args[1])
    return None


def test_the_walk_finds_a_circle_where_there_is_one() -> None:
    assert find_circle({"a": {"b"}, "b": {"a"}}) == ("a", "b", "a")
    assert find_circle({"a": {"b"}, "b": set()}) is None


def test_the_walk_sees_imports_inside_functions() -> None:
    deferred = ast.parse("def f():\n    from core.engine import checkpoint\n")
    modules = {"core.engine", "core.engine.checkpoint"}
    found = set().union(*(imported(node, modules) for node in ast.walk(deferred)))
    assert found == {"core.engine.checkpoint"}


def test_the_walk_sees_the_engine_and_its_checkpoint_codec() -> None:
    graph = import_graph("core")
    assert "core.engine.checkpoint" in graph["core.engine.engine"]
    assert "core.engine.state" in graph["core.engine.checkpoint"]
    assert graph["core.engine"] == {"core.engine.config", "core.engine.engine"}


def test_the_walk_sees_the_venue_rooms_build_on_the_file_machinery() -> None:
    graph = import_graph("ingest")
    assert "ingest.files.lines" in graph["ingest.venues.binance.files"]
    assert "ingest.venues" in graph["ingest.files.detect"]  # detection reads the registry
    assert "ingest.files.detect" not in graph["ingest.files"]  # so the package does not


@pytest.mark.parametrize(
    "package",
    [
        "core",
        "core/engine",
        "ingest",
        "machine",
        "storage",
        "charting",
        "trading",
        "main_api",
        "sdk",
    ],
)
def test_no_import_circle(package: str) -> None:
    circle = find_circle(import_graph(package))
    assert circle is None, f"import circle: {' -> '.join(circle or ())}"


SDK_IMPORTS = {"core", "sdk", "websockets", "httpx", "msgspec"}
"""What the bot SDK may import besides the standard library: the shared kernel and the
libraries it talks with. Never a service (``ws_gateway``, ``auth``, ``trading``...), nor
``access`` or ``streams``: a bot author installs the SDK without the platform's servers."""


def top_level_imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def test_the_sdk_imports_core_and_its_libraries_only() -> None:
    found = top_level_imports("sdk") - set(sys.stdlib_module_names) - {"__future__"}
    assert found <= SDK_IMPORTS, f"sdk imports {sorted(found - SDK_IMPORTS)}"
    assert {"core", "websockets", "httpx", "msgspec"} <= found  # the walk sees them


SERVICES = ("auth", "charting", "edge", "main_api", "trading", "ws_gateway")
"""The services: each imports the shared packages (``core``, ``access``, ``web``, ``streams``,
``storage``...), never another service; services meet on topics and over HTTP."""


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service: str) -> None:
    others = set(SERVICES) - {service}
    found = top_level_imports(service)
    assert not found & others, f"{service} imports {sorted(found & others)}"
    assert "core" in found  # the walk sees its imports


TOOLS = {"bench", "deploy", "examples", "scripts", "tests"}
"""What is not the platform: benchmarks, deployment tools (the Grafana dashboards' builder),
examples and tests. The installed packages never import them."""


def runtime_packages() -> list[str]:
    """The packages ``pyproject.toml`` installs (``core*`` and the others)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["packages"]["find"]["include"]
    return [pattern.rstrip("*") for pattern in patterns]


@pytest.mark.parametrize("package", runtime_packages())
def test_the_runtime_packages_import_no_tool(package: str) -> None:
    assert package not in TOOLS
    found = top_level_imports(package)
    assert not found & TOOLS, f"{package} imports {sorted(found & TOOLS)}"
