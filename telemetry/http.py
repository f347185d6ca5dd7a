"""HTTP request metrics for every Starlette app, as one pure ASGI middleware.

The route label is the matched route's template (``/v1/candles/{instrument}``), never the
path (its values would make a series per instrument); a request no route matched is
``unmatched``. The route is read from the scope after the app ran: Starlette's router puts
the matched route there (``scope["route"]``). :func:`web.server.uvicorn_config` wraps every
app it serves, so each service's requests are counted wherever it runs.

:func:`traced` adds the server span of each request (OpenTelemetry's ASGI middleware: W3C
``traceparent`` read from the request, a span per request the sampler takes), named by the
route template once the app has run, like the metric's label.
"""

from __future__ import annotations

import time
from typing import Any, Final

import httpx
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry import tracing
from telemetry.metrics import HTTP_REQUESTS

UNMATCHED = "unmatched"
UNTRACED: Final = "/healthz,/readyz,/metrics"
"""Paths whose requests make no span (probes and scrapes: many, and all alike)."""


class traced:  # noqa: N801  # used as a function: traced(app)
    """``app`` with a server span per sampled HTTP request, continuing the caller's trace
    (OpenTelemetry's ASGI middleware; its per-message ``receive``/``send`` spans left out).

    A request goes through the middleware only when it carries a ``traceparent`` (the
    caller's decision holds) or the root sampler's coin takes it; the others, nearly all, go
    straight to the app: the SDK's own decision for a span it drops costs tens of
    microseconds a request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.middleware: ASGIApp = OpenTelemetryMiddleware(
            app,
            excluded_urls=UNTRACED,
            default_span_details=_span_details,
            tracer=tracing.tracer(),
            exclude_spans=["receive", "send"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif any(name == b"traceparent" for name, _ in scope["headers"]):
            await self.middleware(scope, receive, send)
        elif tracing.take_root():
            with tracing.taken():
                await self.middleware(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def traced_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client`` with a client span per sampled request and the W3C ``traceparent`` sent
    (OpenTelemetry's httpx instrumentation): for calls between our services only, never to
    a third party's URL (a webhook), which has no business with our trace ids."""
    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=tracing.provider_now())
    return client


def _name_span(scope: Scope) -> None:
    """Name the request's span (when sampled) by its route template, once routed."""
    span = trace.get_current_span()
    if span.is_recording():
        template = getattr(scope.get("route"), "path", None) or UNMATCHED
        span.update_name(f"{scope['method']} {template}")
        span.set_attribute("http.route", template)


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The span's first name: the method alone (the route template replaces it once
    known; never the path, whose values are unbounded)."""
    return str(scope.get("method", "HTTP")), {}


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
                _name_span(scope)  # before the span ends with the response
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            HTTP_REQUESTS.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
