"""What the token-checked JSON services (the main API, the trading API) share around their
routes: the guard that turns a request into its caller and a refusal into a problem, the
bounded body (:mod:`web.bodies` reads it), the JSON answer, and the OpenAPI, health and
readiness routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, Generic, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.health import ALIVE_PATH, READY_PATH, alive
from web.problems import ProblemError

C = TypeVar("C")
Endpoint = Callable[[Request], Awaitable[Response]]
Problem = Callable[[Exception], ProblemError]

JSON_MEDIA_TYPE: Final = "application/json"


def json_response(content: object, status: int = 200) -> Response:
    """``content`` encoded by msgspec, as ``application/json``."""
    return Response(msgspec.json.encode(content), status, media_type=JSON_MEDIA_TYPE)


class Guard(Generic[C]):
    """Routes' handlers called with their caller (``caller``: the request's token made into
    who asks, or a :class:`ProblemError`), the handler's ``refusals`` answered as
    ``problem`` makes them."""

    def __init__(
        self,
        caller: Callable[[Request], Awaitable[C]],
        refusals: tuple[type[Exception], ...],
        problem: Problem,
    ) -> None:
        self.caller, self.refusals, self.problem = caller, refusals, problem

    def __call__(self, handler: Callable[[Request, C], Awaitable[Response]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            caller = await self.caller(request)
            try:
                return await handler(request, caller)
            except self.refusals as exc:
                raise self.problem(exc) from None

        return endpoint


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request's body, refused past ``max_bytes`` with 413 ``too-large`` (the guarded
    server refuses it before it arrives; this bounds the app under any server)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ProblemError(
                413, "body-too-large", "Body too large",
                f"a body is at most {max_bytes} bytes", extra={"code": "too-large"},
            )  # fmt: skip
        chunks.append(chunk)
    return b"".join(chunks)


def service_routes(
    prefix: str, document: dict[str, Any], ready: Endpoint, live: Endpoint = alive
) -> list[Route]:
    """``{prefix}/openapi.json`` (``document``, encoded once), ``/healthz`` (``live``: the
    process answers) and ``/readyz`` (``ready``: what it needs answers; :mod:`web.health`)."""
    encoded = msgspec.json.encode(document)

    async def openapi_json(request: Request) -> Response:
        return Response(encoded, media_type=JSON_MEDIA_TYPE)

    return [
        Route(f"{prefix}/openapi.json", openapi_json, methods=["GET"]),
        Route(ALIVE_PATH, live, methods=["GET"]),
        Route(READY_PATH, ready, methods=["GET"]),
    ]
