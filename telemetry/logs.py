"""One logging setup for every service: JSON lines (or text on a terminal), with the
service's name, the current trace id, and secrets masked (:mod:`telemetry.redaction`).

:func:`configure` is called once, by the entry point, before the service starts. It owns the
root logger: one handler on stderr, its level, and two filters every record passes through
(:class:`TraceContext`, then :class:`Redactor`). Modules keep logging as they always have
(``logging.getLogger(__name__)``); the lines a command prints for people (``chart: ...``,
status lines) are not log records and are not touched. ``docs/logging.md`` has the format.
"""

from __future__ import annotations

import logging
import sys
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, TextIO

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from telemetry.redaction import redact

LogFormat = Literal["json", "text"]
FORMATS: Final = ("json", "text")
LEVELS: Final = ("debug", "info", "warning", "error")
FIELDS: Final = ("time", "service", "level", "logger", "message", "trace_id")
"""Every JSON line has these, in this order (``trace_id`` is empty outside a span); extra
fields a caller passes (``extra={...}``) and ``exc_info`` follow."""
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s"
QUIET: Final = ("kafka", "aiokafka")
"""Clients whose own retries our lines already tell: warnings and above only."""
_STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


@dataclass(frozen=True, slots=True)
class LogSettings:
    """How a service logs: ``service`` names it in every line (the command's name: ``up``,
    ``gateway``, ``main-api``...); ``format`` is ``json`` or ``text``, ``None`` for the
    default (:func:`default_format`); ``level`` one of :data:`LEVELS`."""

    service: str
    format: LogFormat | None = None
    level: str = "info"

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"the log format is one of {', '.join(FORMATS)}")
        if self.level not in LEVELS:
            raise ValueError(f"the log level is one of {', '.join(LEVELS)}")


def default_format(stream: TextIO) -> LogFormat:
    """Text for a person at a terminal, JSON for everything else (a file, a pipe, a log
    collector reading a container's stderr)."""
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # closed, or not a real stream
        return "json"


class TraceContext(logging.Filter):
    """Sets ``trace_id`` on every record: the current OpenTelemetry span's trace id as 32 hex
    digits, or ``""`` when no span is current (or it is not sampled into a valid context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = trace.format_trace_id(context.trace_id) if context.is_valid else ""
        return True


class Redactor(logging.Filter):
    """Masks our secrets (:func:`~telemetry.redaction.redact`) in a record's message (its
    arguments merged in first), its traceback and stack, and any extra string field."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info is not None and record.exc_info[0] is not None:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_info = None  # the text, masked below, is what both formatters print
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


class ServiceName(logging.Filter):
    """Sets ``service`` on every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        return True


class _JsonLines(JsonFormatter):
    """python-json-logger's formatter, its fields renamed to ours, its time ISO 8601 in UTC
    to the millisecond."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "service", "levelname", "name", "message", "trace_id"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return utc_time(record)


class _TextLines(logging.Formatter):
    """A plain line for people, its time like the JSON's."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return utc_time(record)


def utc_time(record: logging.LogRecord) -> str:
    """When ``record`` was made: ISO 8601, UTC, to the millisecond."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of ``log_format``."""
    return _TextLines() if log_format == "text" else _JsonLines()


class _Stderr(logging.StreamHandler[TextIO]):
    """A handler on whatever ``sys.stderr`` is when a record comes (as logging's last resort
    does): a stream swapped later (a test's capture) is followed, a closed one never kept."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def handler(settings: LogSettings, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing to ``stream`` (default: stderr, as it is at each record) in the
    settings' format, with the service's name, the trace id and secrets masked."""
    made = _Stderr() if stream is None else logging.StreamHandler(stream)
    made.setFormatter(formatter(settings.format or default_format(stream or sys.stderr)))
    made.addFilter(ServiceName(settings.service))
    made.addFilter(TraceContext())
    made.addFilter(Redactor())
    return made


def installed() -> list[logging.Handler]:
    """The root logger's handlers that :func:`configure` installed (for a framework that
    replaces the root's handlers when it starts, to hand them back)."""
    return [h for h in logging.getLogger().handlers if getattr(h, "_telemetry", False)]


def configure(settings: LogSettings, stream: TextIO | None = None) -> logging.Handler:
    """Route every log record of the process to ``stream`` (default stderr) as ``settings``
    say, replacing any handler the root logger had; the handler is returned (tests remove
    it). Calling it again replaces the first setup."""
    root = logging.getLogger()
    for old in installed():
        root.removeHandler(old)
    made = handler(settings, stream)
    made._telemetry = True  # type: ignore[attr-defined]
    root.addHandler(made)
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, level))
    return made
