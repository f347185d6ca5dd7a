"""Timing helpers shared by the benchmarks: repeated runs, medians, a printed table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured contender: items per second over several runs."""

    name: str
    items: int
    seconds: list[float]

    @property
    def median_rate(self) -> float:
        return self.items / statistics.median(self.seconds)

    @property
    def best_rate(self) -> float:
        return self.items / min(self.seconds)


def measure(name: str, items: int, action: Callable[[], object], repeat: int) -> Figure:
    """Run ``action`` ``repeat`` times (after one warm-up) and keep each wall time."""
    action()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return Figure(name, items, seconds)


def print_table(title: str, figures: list[Figure], baseline: Figure, unit: str) -> None:
    """Medians and best runs, each with its ratio to ``baseline``'s median."""
    print(f"\n{title}")
    print(f"  {'contender':<34} {'median ' + unit:>18} {'best ' + unit:>18} {'x baseline':>11}")
    for figure in figures:
        ratio = figure.median_rate / baseline.median_rate
        print(
            f"  {figure.name:<34} {figure.median_rate:>18,.0f} {figure.best_rate:>18,.0f}"
            f" {ratio:>10.1f}x"
        )
