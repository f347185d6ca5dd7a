"""A long-running process's heap: what its garbage collector need not walk again."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Leave every object made so far (the modules, their tables, the settings) out of every
    later collection: collect once, then ``gc.freeze()``. A full collection then walks only
    what the process made since, so its pause stays short: in the candle worker of
    ``bench.latency`` a full collection took up to 82 ms with the modules in it, and such a
    pause holds every record behind it (docs/benchmarks.md, "Tick to candle latency").

    For a process's own entry point (a command's main, a benchmark's child), once its imports
    are done; never from a library module: only the process knows when its start is over, and
    a library's caller may be a test or another service.
    """
    gc.collect()
    gc.freeze()
