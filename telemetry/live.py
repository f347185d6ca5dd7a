"""Gauges read when Prometheus scrapes, from the objects that hold the state.

A gateway knows how many clients it has and what waits in their queues; keeping a gauge up
to date on every change would cost the hot path for a number read once a second. A
:class:`LiveGauge` instead asks its sources at collection time and sums what they say per
label values. A source is watched while the object runs and forgotten after; several
objects (two gateways in one test process) add up.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

Reading = Iterable[tuple[Sequence[str], float]]
"""What a source says: (label values, value) pairs."""


class LiveGauge(Collector):
    """A gauge named ``name`` whose value is the sum of its sources' readings."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name, self.documentation, self.labels = name, documentation, tuple(labels)
        self._sources: dict[int, Callable[[], Reading]] = {}
        self._ids = itertools.count()

    def watch(self, source: Callable[[], float | Reading]) -> Callable[[], None]:
        """Read ``source`` at every collection (a number when the gauge has no labels);
        returns the function that stops it."""
        key = next(self._ids)
        if self.labels:
            self._sources[key] = source  # type: ignore[assignment]
        else:
            self._sources[key] = lambda: [((), float(source()))]  # type: ignore[arg-type]
        return lambda: self._sources.pop(key, None) and None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        totals: dict[tuple[str, ...], float] = {}
        for source in list(self._sources.values()):
            for values, value in source():
                key = tuple(values)
                totals[key] = totals.get(key, 0.0) + value
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        if not self.labels:
            totals.setdefault((), 0.0)
        for values, value in sorted(totals.items()):
            family.add_metric(list(values), value)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
