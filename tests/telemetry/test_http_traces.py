"""HTTP carries the W3C trace context: a server span per sampled request, named by its route
template, continuing the caller's trace (another service's traced client, or any client
sending ``traceparent``); probes make no span."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from telemetry import tracing
from telemetry.http import traced_client
from tests.telemetry.traces import traced
from web.server import serving


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.path_params["name"])


async def alive(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


APP = Starlette(routes=[Route("/v1/things/{name}", echo), Route("/healthz", alive)])


async def test_a_traced_client_and_the_server_it_calls_are_one_trace() -> None:
    with traced(1.0) as exporter:
        async with (
            serving(APP) as server,
            traced_client(httpx.AsyncClient(base_url=server.url)) as client,
        ):
            with tracing.tracer().start_as_current_span("caller") as caller:
                answer = await client.get("/v1/things/BTC")
                assert (await client.get("/healthz")).status_code == 200
    assert answer.text == "BTC"
    spans = exporter.get_finished_spans()
    trace_id = caller.get_span_context().trace_id
    assert {s.context.trace_id for s in spans if s.context} == {trace_id}
    server_spans = [s for s in spans if s.name == "GET /v1/things/{name}"]
    assert len(server_spans) == 1, [s.name for s in spans]
    (served,) = server_spans
    assert served.attributes is not None
    assert served.attributes["http.route"] == "/v1/things/{name}"
    client_spans = [s for s in spans if s.kind.name == "CLIENT"]
    assert len(client_spans) == 2  # the probe's client span, but no server span for it
    assert served.parent is not None
    assert served.parent.span_id in {s.context.span_id for s in client_spans if s.context}


async def test_a_request_with_a_traceparent_continues_that_trace_even_at_ratio_0() -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    parent = "b7ad6b7169203331"
    with traced(0.0) as exporter:
        async with serving(APP) as server, httpx.AsyncClient(base_url=server.url) as client:
            await client.get(
                "/v1/things/ETH", headers={"traceparent": f"00-{trace_id}-{parent}-01"}
            )
            await client.get("/v1/things/ETH")  # a root at ratio 0: not sampled
    (span,) = exporter.get_finished_spans()
    assert span.context is not None
    assert f"{span.context.trace_id:032x}" == trace_id
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == parent
