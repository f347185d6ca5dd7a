"""A failure no handler takes answers 500 problem+json ``internal-error`` in every service's
app (the main and trading APIs' :func:`web.tokens.service_app`, the history API), says
nothing of the exception, and is logged once with its traceback: served by uvicorn, as in
production, where a Starlette handler for ``Exception`` would have it logged twice. Its
repeats on one route are counted, not logged, within a window, then summed up in a line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import cast

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from access.settings import TokenSettings
from charting import create_app
from storage.reads import HistoryReads
from tests.support.clock import Clock
from web.internal_errors import InternalErrors
from web.server import serving
from web.tokens import TokenGate, service_app

SECRET = "password=hunter2 at db.internal:5432"


async def fails(request: Request) -> Response:
    raise RuntimeError(SECRET)


async def fails_midway(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk"
        raise RuntimeError(SECRET)

    return StreamingResponse(chunks(), media_type="text/plain")


class BrokenHistory:
    """History reads whose every call fails as a bug would."""

    def __getattr__(self, name: str) -> object:
        async def broken(*args: object, **kwargs: object) -> object:
            raise RuntimeError(SECRET)

        return broken


def _service() -> Starlette:
    routes = [Route("/v1/fails", fails), Route("/v1/fails-midway", fails_midway)]
    return service_app(routes, TokenGate(TokenSettings(), "test"), None)


def _history() -> Starlette:
    return create_app(cast(HistoryReads, BrokenHistory()))


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info is not None]


@pytest.mark.parametrize(
    ("make", "path"), [(_service, "/v1/fails"), (_history, "/v1/instruments")],
    ids=["service-app", "history-api"],
)  # fmt: skip
async def test_a_failing_route_answers_internal_error_and_logs_once(
    make: Callable[[], Starlette], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(make()) as server, httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get(path)
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert (body["code"], body["status"]) == ("internal-error", 500)
        assert body["type"].endswith("/internal-error")
        assert "hunter2" not in answer.text
        assert "RuntimeError" not in answer.text
    (logged,) = _tracebacks(caplog)
    assert logged.name == "web.internal_errors"
    assert path in logged.getMessage()


async def test_a_failure_after_the_answer_began_closes_the_connection_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving(_service()) as server, httpx.AsyncClient(base_url=server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/v1/fails-midway")
    assert len(_tracebacks(caplog)) == 1  # uvicorn's: a second head cannot be sent


async def answers(request: Request) -> Response:
    return Response("fine")


async def fails_otherwise(request: Request) -> Response:
    raise KeyError(SECRET)


def _limited(clock: Clock) -> Starlette:
    routes = [
        Route("/v1/fails/{n}", fails),
        Route("/v1/other", fails),
        Route("/v1/otherwise/{n}", fails_otherwise),
        Route("/v1/fine", answers),
    ]
    return Starlette(routes=routes, middleware=[Middleware(InternalErrors, clock=clock)])


def _said(caplog: pytest.LogCaptureFixture) -> list[tuple[str, bool]]:
    """The catch-all's records since the last call: each line and whether it has a traceback."""
    said = [
        (record.getMessage(), record.exc_info is not None)
        for record in caplog.records
        if record.name == "web.internal_errors"
    ]
    caplog.clear()
    return said


async def test_repeats_of_a_routes_failure_are_counted_and_summed_up_once_the_window_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    async with serving(_limited(clock)) as server, httpx.AsyncClient(base_url=server.url) as c:

        async def get(path: str, at: float) -> httpx.Response:
            clock.now = at
            answer = await c.get(path)
            if path != "/v1/fine":  # every client still gets its problem, saying nothing
                assert (answer.status_code, answer.json()["code"]) == (500, "internal-error")
                assert "hunter2" not in answer.text
            return answer

        for n, at in enumerate((0.0, 1.0, 30.0, 59.0)):
            await get(f"/v1/fails/{n}", at)
        assert _said(caplog) == [("GET '/v1/fails/0' failed", True)]  # one traceback, not 4
        await get("/v1/other", 2.0)  # another route
        await get("/v1/otherwise/1", 3.0)  # the same place, another exception
        await get("/v1/otherwise/2", 4.0)
        assert _said(caplog) == [
            ("GET '/v1/other' failed", True),
            ("GET '/v1/otherwise/1' failed", True),
        ]
        await get("/v1/fine", 59.9)
        assert _said(caplog) == []  # no window has ended yet
        await get("/v1/fine", 64.0)  # any request after the windows' end has them told
        assert _said(caplog) == [
            ("GET /v1/fails/{n} failed 3 more times with RuntimeError within 60s;"
             " their tracebacks were not logged", False),
            ("GET /v1/otherwise/{n} failed 1 more time with KeyError within 60s;"
             " their tracebacks were not logged", False),
        ]  # fmt: skip
        await get("/v1/fails/9", 65.0)
        assert _said(caplog) == [("GET '/v1/fails/9' failed", True)]  # a new window, in full


async def test_a_count_not_told_yet_is_told_before_the_next_traceback_of_its_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()

    async def fails_slowly(request: Request) -> Response:
        clock.now += 2.0  # the request takes 2 s
        raise RuntimeError(SECRET)

    app = _limited(clock)
    app.router.routes.append(Route("/v1/slow", fails_slowly))
    async with serving(app) as server, httpx.AsyncClient(base_url=server.url) as client:
        for start in (0.0, 3.0, 61.0):  # the last begins in the window, fails after it
            clock.now = start
            assert (await client.get("/v1/slow")).status_code == 500
    assert _said(caplog) == [
        ("GET '/v1/slow' failed", True),
        ("GET /v1/slow failed 1 more time with RuntimeError within 60s;"
         " their tracebacks were not logged", False),
        ("GET '/v1/slow' failed", True),
    ]  # fmt: skip


class FailsBeforeRouting:
    """A middleware with a bug: every request fails before a route takes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raise RuntimeError(SECRET)
        await self.app(scope, receive, send)


async def test_failures_before_any_route_are_one_kind_whatever_their_paths(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A scanner's random paths through a broken middleware: one traceback, not one a path."""
    clock = Clock()
    app = Starlette(
        routes=[Route("/v1/fine", answers)],
        middleware=[Middleware(InternalErrors, clock=clock), Middleware(FailsBeforeRouting)],
    )
    async with serving(app) as server, httpx.AsyncClient(base_url=server.url) as client:
        for n in range(5):
            answer = await client.get(f"/probe/{n}.php")
            assert (answer.status_code, answer.json()["code"]) == (500, "internal-error")
        clock.now = 61.0
        await client.get("/v1/fine")
    assert _said(caplog) == [
        ("GET '/probe/0.php' failed", True),
        ("GET <unrouted> failed 4 more times with RuntimeError within 60s;"
         " their tracebacks were not logged", False),
        ("GET '/v1/fine' failed", True),
    ]  # fmt: skip
