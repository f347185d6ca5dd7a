"""The tracing setup: every command takes ``--trace-sample`` and ``--otlp-endpoint`` once;
the provider names the service and samples roots at the ratio, children as their parents."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mdp.cli import build_parser
from mdp.common_options import configure_logging
from telemetry import tracing
from telemetry.logs import installed
from tests.telemetry.test_logs import leaf_parsers


@pytest.fixture
def restore() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    for handler in installed():
        root.removeHandler(handler)
    root.setLevel(level)
    tracing.shutdown()


def test_every_command_takes_the_trace_options_once() -> None:
    for prog, parser in dict(leaf_parsers(build_parser())).items():
        options = [o for a in parser._actions for o in a.option_strings]
        assert options.count("--trace-sample") == 1, prog
        assert options.count("--otlp-endpoint") == 1, prog


def test_the_default_sample_is_one_percent_and_a_ratio_outside_0_to_1_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert build_parser().parse_args(["writer"]).trace_sample == 0.01
    assert build_parser().parse_args(["writer", "--trace-sample", "0.25"]).trace_sample == 0.25
    for bad in ("1.5", "-0.1", "nan", "half"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["writer", "--trace-sample", bad])
        assert f"--trace-sample: a ratio from 0 to 1, not '{bad}'" in capsys.readouterr().err


def test_the_endpoint_defaults_to_the_standard_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tracing.ENDPOINT_VARIABLE, "http://127.0.0.1:4318")
    assert build_parser().parse_args(["gateway"]).otlp_endpoint == "http://127.0.0.1:4318"
    monkeypatch.delenv(tracing.ENDPOINT_VARIABLE)
    assert build_parser().parse_args(["gateway"]).otlp_endpoint is None


def test_a_command_traces_as_its_service_at_its_ratio(restore: None) -> None:
    args = build_parser().parse_args(["writer", "--trace-sample", "1", "--log-format", "json"])
    configure_logging(args)
    exporter = InMemorySpanExporter()
    provider = tracing._SWITCH.current
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    root = tracing.sampled_root("ingest.publish")
    assert root is not None
    root.end()
    (span,) = exporter.get_finished_spans()
    assert span.resource.attributes["service.name"] == "writer"
    assert "TraceIdRatioBased{1.0}" in provider.sampler.get_description()


def test_a_child_follows_its_parents_decision_whatever_the_ratio(restore: None) -> None:
    exporter = InMemorySpanExporter()
    tracing.configure(tracing.TraceSettings("test", sample=0.0), exporter)
    assert tracing.sampled_root("ingest.publish") is None  # a root at 0: never
    headers = (("traceparent", b"00-" + b"ab" * 16 + b"-" + b"cd" * 8 + b"-01"),)
    assert tracing.parent_of(headers) is not None
    unsampled = (("traceparent", b"00-" + b"ab" * 16 + b"-" + b"cd" * 8 + b"-00"),)
    assert tracing.parent_of(unsampled) is None  # a record whose trace is not sampled
    assert tracing.parent_of((("traceparent", b"garbage"),)) is None

    class Carrying:
        def __init__(self, headers: tracing.Headers) -> None:
            self.headers = headers

    with tracing.round_span("engine.step", [Carrying(()), Carrying(headers)]) as span:
        assert span is not None
    with tracing.round_span("engine.step", [Carrying(()), Carrying(unsampled)]) as none:
        assert none is None
    (child,) = exporter.get_finished_spans()
    assert child.parent is not None
    assert child.parent.span_id == int("cd" * 8, 16)
    assert child.context is not None
    assert child.context.trace_id == int("ab" * 16, 16)
