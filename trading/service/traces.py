"""An order's trace, from its POST to its fills: the span context of a sampled order's
placing, kept until the order ends, and the spans of its saga's steps and of what the venue
reports on a trade (``docs/observability.md``, "Traces")."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from typing import Final

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext

from core.trading_events import OrderCanceled, OrderFilled, OrderTriggered
from telemetry.tracing import tracer

MAX_TRACED_ORDERS: Final = 10_000
"""Sampled open orders whose context is kept; beyond it the oldest is forgotten (its later
fills are then traced as the tick's only)."""


def step_span(step: str, order_id: str) -> contextlib.AbstractContextManager[object]:
    """A ``trading.<step>`` span around one append of the saga, inside a sampled span only."""
    if not trace.get_current_span().is_recording():
        return contextlib.nullcontext()
    attributes = {"mdp.saga.step": step, "mdp.order_id": order_id}
    return tracer().start_as_current_span(f"trading.{step}", attributes=attributes)


class OrderTraces:
    """The span contexts of sampled orders' placing, by order id (bounded)."""

    def __init__(self, limit: int = MAX_TRACED_ORDERS) -> None:
        self._limit = limit
        self._contexts: OrderedDict[str, SpanContext] = OrderedDict()

    def __len__(self) -> int:
        return len(self._contexts)

    def remember(self, order_id: str) -> None:
        """Keep the current span's context for ``order_id`` when it is sampled."""
        span = trace.get_current_span()
        if not span.is_recording():
            return
        self._contexts[order_id] = span.get_span_context()
        if len(self._contexts) > self._limit:
            self._contexts.popitem(last=False)

    def forget(self, order_id: str) -> None:
        self._contexts.pop(order_id, None)

    @contextlib.contextmanager
    def settling(self, report: OrderFilled | OrderTriggered | OrderCanceled) -> Iterator[None]:
        """Around settling ``report``: a ``trading.fill`` (or ``trading.settle``) span, child
        of the order's placing and linked to the current span (the tick's round), when the
        order was sampled; nothing otherwise."""
        placed = self._contexts.get(report.order_id)
        if placed is None:
            yield
            return
        current = trace.get_current_span().get_span_context()
        links = [Link(current)] if current.is_valid else []
        name = "trading.fill" if isinstance(report, OrderFilled) else "trading.settle"
        attributes = {"mdp.order_id": report.order_id, "mdp.report": type(report).__name__}
        with tracer().start_as_current_span(
            name,
            context=trace.set_span_in_context(trace.NonRecordingSpan(placed)),
            links=links,
            attributes=attributes,
        ):
            yield
