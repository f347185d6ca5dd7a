"""What the services' OpenAPI 3.1 documents share: the problem schema, an operation (bearer
token, its answer and a refusal), a parameter, and the document around the paths, its schemas
made by msgspec from the very types the app encodes (so a document cannot drift from the
answers)."""

from __future__ import annotations

from typing import Any, Final

import msgspec

REF: Final = "#/components/schemas/"


class Problem(msgspec.Struct, kw_only=True):
    """A refusal (RFC 9457): ``code`` is ours; ``parameter`` the field at fault."""

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
    parameter: str | None = None


def param(name: str, where: str = "query", kind: str = "integer") -> dict[str, Any]:
    """A parameter of ``kind`` in the query or the path (one in the path is required)."""
    return {"name": name, "in": where, "required": where == "path", "schema": {"type": kind}}


def operation(
    summary: str,
    answer: str | None,
    body: str | None = None,
    *params: dict[str, Any],
    status: str = "200",
) -> dict[str, Any]:
    """An operation a bearer token may call: ``status`` with the schema ``answer`` (none: no
    content), any other a problem; ``body`` the schema of its required JSON body."""
    problem = {"content": {"application/problem+json": {"schema": {"$ref": REF + "Problem"}}}}
    ok: dict[str, Any] = {"description": "OK"}
    if answer is not None:
        ok["content"] = {"application/json": {"schema": {"$ref": REF + answer}}}
    made: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {status: ok, "default": {"description": "a refusal", **problem}},
    }
    if params:
        made["parameters"] = list(params)
    if body is not None:
        content = {"application/json": {"schema": {"$ref": REF + body}}}
        made["requestBody"] = {"required": True, "content": content}
    return made


def document(title: str, types: tuple[type[Any], ...], paths: dict[str, Any]) -> dict[str, Any]:
    """The document of the API ``title``: its ``paths``, the schemas of ``types`` (and of
    :class:`Problem`), bearer tokens."""
    _, schemas = msgspec.json.schema_components((*types, Problem), ref_template=REF + "{name}")
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
