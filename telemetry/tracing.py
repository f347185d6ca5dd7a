"""One tracing setup for every service: OpenTelemetry spans, sampled per batch, exported over
OTLP/HTTP when an endpoint is given, and W3C trace context carried in bus record headers.

:func:`configure` is called once, by the entry point (``--trace-sample``, ``--otlp-endpoint``:
:mod:`mdp.common_options`). It sets a parent-based ratio sampler: a root span (a published tick
batch, an HTTP request without a ``traceparent``) is sampled with the ratio, a child follows
its parent. Without an endpoint nothing is exported: the cost is the sampling decision.

The bus carries the context in record headers (:data:`~streams.bus.Headers`), written and read
with OpenTelemetry's W3C propagator (:func:`headers_now`, :func:`parent_of`). Only sampled work
carries a header, so a consumer opens a span for a poll only when one of its records has one
(:func:`round_span`): unsampled polls make no span at all, and nothing is made per tick.

The sampler decides once per batch, and cheaply: :func:`sampled_root` flips its own coin
first (a ``random()`` against the ratio, about 0.1 µs) and asks the SDK for a span only for
the batches it takes, which the SDK's sampler then records as decided (:class:`_RootSampler`);
the SDK's own decision for an unsampled span costs tens of microseconds, too much per batch.

The global tracer provider can be set once per process, so it is a switch set once
(:class:`_Switch`); :func:`configure` swaps what is behind it (a test configures again with an
in-memory exporter).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from random import random
from typing import Any, Final, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

Headers = tuple[tuple[str, bytes], ...]
"""Record headers as the bus carries them: ``(name, value)`` pairs (Kafka's shape)."""

DEFAULT_SAMPLE: Final = 0.01
"""The share of root spans (tick batches, requests) sampled unless told: 1%."""
ENDPOINT_VARIABLE: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""OpenTelemetry's standard variable, the default of ``--otlp-endpoint``."""
TRACER_NAME: Final = "mdp"

_PROPAGATOR: Final = TraceContextTextMapPropagator()
_TRACEPARENT: Final = "traceparent"
_CONTEXT_HEADERS: Final = frozenset((_TRACEPARENT, "tracestate"))


@dataclass(frozen=True, slots=True)
class TraceSettings:
    """How a service traces: ``service`` names it (``service.name``), ``sample`` is the ratio
    of root spans sampled (0 to 1), ``endpoint`` the OTLP/HTTP collector's base URL
    (``http://HOST:4318``; spans go to ``/v1/traces`` under it), ``None`` for no export."""

    service: str
    sample: float = DEFAULT_SAMPLE
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample <= 1.0:
            raise ValueError("the trace sample ratio is a number from 0 to 1")


class _SwitchTracer(trace.Tracer):
    """A tracer that asks the switch's current provider for its tracer (kept until a swap)."""

    def __init__(self, switch: _Switch, name: str) -> None:
        self._switch = switch
        self._name = name
        self._for: trace.TracerProvider | None = None
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def _current(self) -> trace.Tracer:
        provider = self._switch.current
        if provider is not self._for:
            self._for = provider
            self._tracer = provider.get_tracer(self._name)
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> Span:
        return self._current().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._current().start_as_current_span(*args, **kwargs)


class _Switch(trace.TracerProvider):
    """The process's global provider: hands out tracers that follow :func:`configure`."""

    def __init__(self) -> None:
        self.current: trace.TracerProvider = trace.NoOpTracerProvider()
        self.root_ratio = 0.0
        """The ratio :func:`sampled_root` flips its coin against (0 while tracing is off)."""

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _SwitchTracer(self, instrumenting_module_name)


_SWITCH: Final = _Switch()


def _install() -> None:
    """Make the switch the global provider (once; instrumentation libraries use it)."""
    if trace.get_tracer_provider() is not _SWITCH:
        trace.set_tracer_provider(_SWITCH)


_TAKEN: Final = ContextVar("mdp_root_taken", default=False)
"""Set while a root the coin took is started by a library (:func:`taken`)."""
_DECIDED: Final = otel_context.create_key("mdp.sampled-root")
_ROOT: Final = otel_context.set_value(_DECIDED, True, otel_context.Context())
"""The context of a root span :func:`sampled_root` has already decided to sample."""


class _RootSampler(Sampler):
    """The sampler of root spans: the ratio's (``TraceIdRatioBased``), except for a root
    whose batch :func:`sampled_root` has taken already (its context says so)."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if _TAKEN.get() or (parent_context is not None and parent_context.get(_DECIDED)):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"Batch+{self._ratio.get_description()}"


def provider(settings: TraceSettings, *processors: SpanProcessor) -> TracerProvider:
    """An SDK provider for ``settings``: the service's resource, the parent-based ratio
    sampler, the OTLP/HTTP exporter when an endpoint is set, and ``processors``."""
    made = TracerProvider(
        resource=Resource.create({"service.name": settings.service}),
        sampler=ParentBased(_RootSampler(settings.sample)),
    )
    if settings.endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = settings.endpoint.rstrip("/") + "/v1/traces"
        made.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    for processor in processors:
        made.add_span_processor(processor)
    return made


def configure(
    settings: TraceSettings, exporter: SpanExporter | None = None, *, batched: bool = False
) -> TracerProvider:
    """The process's tracing as ``settings`` say (``exporter``: another one, spans handed to
    it as each ends, or in batches on a thread of their own when ``batched``, as the OTLP
    exporter's are; tests pass an in-memory one). Calling it again replaces the first setup,
    whose spans are flushed."""
    _install()
    extra: list[SpanProcessor] = []
    if exporter is not None:
        extra.append(BatchSpanProcessor(exporter) if batched else SimpleSpanProcessor(exporter))
    made = provider(settings, *extra)
    _SWITCH.root_ratio = settings.sample
    old, _SWITCH.current = _SWITCH.current, made
    if isinstance(old, TracerProvider):
        old.shutdown()
    return made


def shutdown() -> None:
    """Flush and stop the exporters (at the end of the process); tracing is off after."""
    _SWITCH.root_ratio = 0.0
    old, _SWITCH.current = _SWITCH.current, trace.NoOpTracerProvider()
    if isinstance(old, TracerProvider):
        old.shutdown()


def provider_now() -> trace.TracerProvider:
    """The process's provider for instrumentation libraries (follows :func:`configure`)."""
    _install()
    return _SWITCH


def tracer() -> trace.Tracer:
    """The platform's tracer (follows :func:`configure`)."""
    _install()
    return _TRACER


_TRACER: Final = _SWITCH.get_tracer(TRACER_NAME)


def sampled_root(name: str, attributes: Mapping[str, Any] | None = None) -> Span | None:
    """A new root span of a batch's work, started, if the coin says so (the ratio); else
    ``None`` (nothing to end: the unsampled batch goes on without a span or a header)."""
    if not take_root():
        return None
    span = _TRACER.start_span(name, context=_ROOT, kind=SpanKind.PRODUCER, attributes=attributes)
    return span if span.is_recording() else None


def take_root() -> bool:
    """Flip the root sampler's coin (the ratio; ``False`` while tracing is off)."""
    return random() < _SWITCH.root_ratio


@contextlib.contextmanager
def taken() -> Iterator[None]:
    """Meanwhile the root spans a library starts are sampled: the coin took them already
    (:func:`take_root`), so the SDK's sampler must not flip again."""
    token = _TAKEN.set(True)
    try:
        yield
    finally:
        _TAKEN.reset(token)


def headers_now() -> Headers:
    """The W3C trace context of the current span as record headers, when it is sampled;
    ``()`` otherwise (an unsampled record carries none)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return ()
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return tuple((name, value.encode()) for name, value in carrier.items())


def parent_of(headers: Headers) -> trace.SpanContext | None:
    """The sampled span context ``headers`` carry, if any."""
    carrier = {}
    for name, value in headers:
        if name in _CONTEXT_HEADERS:
            carrier[name] = value.decode("latin-1")
    if _TRACEPARENT not in carrier:
        return None
    found = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return found if found.is_valid and found.trace_flags.sampled else None


class Carrier(Protocol):
    """What carries headers: a bus record (:class:`streams.bus.Record`)."""

    @property
    def headers(self) -> Headers: ...


@contextlib.contextmanager
def round_span(
    name: str, records: Sequence[Carrier], attributes: Mapping[str, Any] | None = None
) -> Iterator[Span | None]:
    """Around one poll's work: when some of ``records`` carry a sampled context, a current
    consumer span that is the first one's child and links to the others; else nothing (no
    span is made, and the records' headers are only looked at)."""
    parents: list[trace.SpanContext] = []
    seen: set[int] = set()
    for record in records:
        if record.headers:
            parent = parent_of(record.headers)
            if parent is not None and parent.span_id not in seen:
                seen.add(parent.span_id)
                parents.append(parent)
    if not parents:
        yield None
        return
    first = trace.set_span_in_context(trace.NonRecordingSpan(parents[0]))
    links = [Link(parent) for parent in parents[1:]]
    with _TRACER.start_as_current_span(
        name, context=first, kind=SpanKind.CONSUMER, links=links, attributes=attributes
    ) as span:
        span.set_attribute("mdp.records", len(records))
        span.set_attribute("mdp.traced_records", len(parents))
        yield span
