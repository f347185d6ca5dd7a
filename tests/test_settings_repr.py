"""No settings object prints a database password: the ones holding a database URL keep it out
of their ``repr`` (``field(repr=False)``), no dataclass of the installed packages holds a
credential in a plain ``str`` field that its ``repr`` shows, and no message type (a
``msgspec.Struct``: request and answer bodies) shows one either (``core.secrets.MaskedFields``)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import msgspec
import pytest

from access.settings import TokenSettings
from auth.app import Credentials
from core.secrets import MASK, MaskedFields
from main_api.settings import MainApiSettings
from main_api.webhooks.store import Claimed
from tests.test_import_graph import REPO, runtime_packages
from trading.process import ProcessSettings
from trading.store.database import StoreSettings
from trading.store.wake import LogChannel

PASSWORD = "s3cret-pw"
URL = f"postgresql://app:{PASSWORD}@db.internal:5432/market?sslmode=require"

CREDENTIAL = re.compile(r"(^|_)(database_url|dsn|conninfo|password|passwd|secrets?|api_key|token)$")
"""A field name that says it holds a credential (a URL named only ``url`` is checked below)."""
SAFE_TYPES = {"Secret", "DatabaseUrl"}
"""Types that mask themselves."""


@pytest.mark.parametrize(
    "settings",
    [
        ProcessSettings(URL, TokenSettings()),
        MainApiSettings(URL, TokenSettings()),
        StoreSettings(URL),
        LogChannel(URL, "trading_events"),
        Claimed("f1", "w1", b"{}", 1, f"https://hooks.example/T0/{PASSWORD}", 0, ("whsec",)),
    ],
    ids=lambda settings: type(settings).__name__,
)
def test_a_settings_repr_never_shows_the_password(settings: object) -> None:
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)


def credential_fields(path: Path) -> list[str]:
    """``Class.field`` of each dataclass field of ``path`` named as a credential, typed as a
    plain string and shown by the class's ``repr``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.ClassDef) or not _is_dataclass(node):
            continue
        if any(isinstance(item, ast.FunctionDef) and item.name == "__repr__" for item in node.body):
            continue
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            name = item.target.id
            if not CREDENTIAL.search(name) or _names(item.annotation) & SAFE_TYPES:
                continue
            if not _repr_off(item.value):
                found.append(f"{path}: {node.name}.{name}")
    return found


def _is_dataclass(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (isinstance(target, ast.Name) and target.id == "dataclass") or (
            isinstance(target, ast.Attribute) and target.attr == "dataclass"
        ):
            return True
    return False


def _names(annotation: ast.expr) -> set[str]:
    return {node.id for node in ast.walk(annotation) if isinstance(node, ast.Name)} | {
        node.value for node in ast.walk(annotation) if isinstance(node, ast.Constant)
        if isinstance(node.value, str)
    }  # fmt: skip


def _repr_off(value: ast.expr | None) -> bool:
    return isinstance(value, ast.Call) and any(
        keyword.arg == "repr" and isinstance(keyword.value, ast.Constant)
        and keyword.value.value is False
        for keyword in value.keywords
    )  # fmt: skip


def test_the_walk_finds_a_credential_that_prints(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "@dataclass\nclass A:\n    database_url: str\n    password: str = field(repr=False)\n"
        "    token: Secret\n    name: str\n"
    )
    found = credential_fields(module)
    assert [line.split(": ", 1)[1] for line in found] == ["A.database_url"]


def credential_fields_of(root: Path) -> list[str]:
    return [field for path in sorted(root.rglob("*.py")) for field in credential_fields(path)]


@pytest.mark.parametrize("package", runtime_packages())
def test_no_dataclass_shows_a_credential_in_its_repr(package: str) -> None:
    assert credential_fields_of(REPO / package) == []


STRUCT_CREDENTIAL = re.compile(r"(^|_)(password|secret|token|api_key)$")
"""A message field that holds a credential (``previous_secret_until`` is a time)."""


def struct_credentials(package: str) -> list[str]:
    """``module.Class.field`` of each ``msgspec.Struct`` field of ``package`` named as a
    credential and not masked."""
    found = []
    for info in pkgutil.walk_packages([str(REPO / package)], f"{package}."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if not (
                isinstance(obj, type)
                and issubclass(obj, msgspec.Struct)
                and obj.__module__ == module.__name__
            ):
                continue
            masked = obj.masked if issubclass(obj, MaskedFields) else frozenset()
            found += [
                f"{module.__name__}.{obj.__name__}.{name}"
                for name in obj.__struct_fields__
                if STRUCT_CREDENTIAL.search(name) and name not in masked
            ]
    return found


@pytest.mark.parametrize("package", runtime_packages())
def test_no_message_type_shows_a_credential_in_its_repr(package: str) -> None:
    assert struct_credentials(package) == []


def test_a_masked_message_shows_its_other_fields_and_never_the_secret() -> None:
    body = Credentials("ada@example.com", PASSWORD)
    for shown in (repr(body), str(body), f"{body}"):
        assert PASSWORD not in shown
        assert shown == f"Credentials(email='ada@example.com', password={MASK})"
    assert msgspec.json.decode(msgspec.json.encode(body), type=Credentials) == body
