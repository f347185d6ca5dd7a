"""Reading the process's metrics in tests: a sample's value now (0 when it has none yet)."""

from __future__ import annotations

from telemetry.metrics import REGISTRY


def value(name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels``, from the registry a scrape reads."""
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found
