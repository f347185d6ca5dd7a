"""What the main API and the trading API share around their routes (``web/routes.py``,
``web/bodies.py``): the guard answers a handler's refusals as problems and lets the caller's
own problem through, a body past its bound is 413 ``too-large``, a body that is no JSON object
or names a field not allowed is refused naming it, and the OpenAPI, health and readiness
routes answer. An in-process app, no server."""

from __future__ import annotations

from decimal import Decimal

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web import health
from web.bodies import json_object
from web.problems import ProblemError, problem_handler
from web.routes import Guard, json_response, read_body, service_routes

DECODER = msgspec.json.Decoder(float_hook=Decimal)


class RefusedError(ValueError):
    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


def as_problem(exc: Exception) -> ProblemError:
    assert isinstance(exc, RefusedError)
    return ProblemError(422, "refused", "RefusedError", exc.message, exc.field,
                        extra={"code": exc.code})  # fmt: skip


async def caller(request: Request) -> str:
    who = request.headers.get("x-who")
    if who is None:
        raise ProblemError(401, "unauthorized", "Unauthorized", "no one", extra={"code": "anon"})
    return who


async def echo(request: Request, who: str) -> Response:
    fields = json_object(await read_body(request, 32), ("a", "b"), RefusedError, decoder=DECODER)
    return json_response({"who": who, "fields": {k: str(v) for k, v in fields.items()}}, 201)


async def ready(request: Request) -> Response:
    return health.ready({"database": None})


def client() -> httpx.AsyncClient:
    guard = Guard(caller, (RefusedError,), as_problem)
    routes = [Route("/x", guard(echo), methods=["POST"]), *service_routes("/v", {"d": 1}, ready)]
    app = Starlette(routes=routes, exception_handlers={ProblemError: problem_handler})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_the_guard_gives_the_handler_its_caller() -> None:
    async with client() as http:
        answer = await http.post("/x", content=b'{"a": 1.5, "b": null}', headers={"x-who": "ann"})
    assert (answer.status_code, answer.json()) == (201, {"who": "ann", "fields": {"a": "1.5"}})


async def test_the_callers_problem_is_answered_as_it_is() -> None:
    async with client() as http:
        answer = await http.post("/x", content=b"{}")
    assert (answer.status_code, answer.json()["code"]) == (401, "anon")
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "status", "code", "parameter"),
    [
        (b"[1]", 422, "format", "body"),
        (b"{", 422, "format", "body"),
        (b'{"c": 1}', 422, "forbidden", "c"),
        (b'{"a": "' + b"x" * 40 + b'"}', 413, "too-large", None),
    ],
)
async def test_a_bad_body_is_refused_naming_the_field(
    body: bytes, status: int, code: str, parameter: str | None
) -> None:
    async with client() as http:
        answer = await http.post("/x", content=body, headers={"x-who": "ann"})
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert answer.json().get("parameter") == parameter


def test_a_value_is_made_in_the_order_the_body_gives_it() -> None:
    def value(name: str, given: object) -> object:
        raise RefusedError(name, "bad", "bad value")

    with pytest.raises(RefusedError) as refused:
        json_object(b'{"a": 1, "c": 2}', ("a",), RefusedError, decoder=DECODER, value=value)
    assert (refused.value.field, refused.value.code) == ("a", "bad")


async def test_openapi_health_and_readiness_answer() -> None:
    async with client() as http:
        document, health, readiness = [
            await http.get(path) for path in ("/v/openapi.json", "/healthz", "/readyz")
        ]
    assert document.json() == {"d": 1}
    assert health.json() == {"status": "ok"}
    assert readiness.json() == {"status": "ready", "checks": {"database": "ok"}}
