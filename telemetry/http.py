"""HTTP request metrics for every Starlette app, as one pure ASGI middleware.

The route label is the matched route's template (``/v1/candles/{instrument}``), never the
path (its values would make a series per instrument); a request no route matched is
``unmatched``. The route is read from the scope after the app ran: Starlette's router puts
the matched route there (``scope["route"]``). :func:`web.server.uvicorn_config` wraps every
app it serves, so each service's requests are counted wherever it runs.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry.metrics import HTTP_REQUESTS

UNMATCHED = "unmatched"


class HttpMetrics:
    """Observes each HTTP request's duration (to the end of its response) in
    :data:`~telemetry.metrics.HTTP_REQUESTS` by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an app that raises before answering: the server answers 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            HTTP_REQUESTS.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
