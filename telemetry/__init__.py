"""Telemetry shared by every service: Prometheus metrics on an admin port, JSON logs, and
(later) OpenTelemetry traces. See docs/observability.md and docs/logging.md."""
