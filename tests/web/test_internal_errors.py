"""A failure no handler takes answers 500 problem+json ``internal-error`` in every service's
app (the main and trading APIs' :func:`web.tokens.service_app`, the history API), says
nothing of the exception, and is logged once with its traceback: served by uvicorn, as in
production, where a Starlette handler for ``Exception`` would have it logged twice."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import cast

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from access.settings import TokenSettings
from charting import create_app
from storage.reads import HistoryReads
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
