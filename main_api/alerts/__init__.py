"""Price alerts evaluated on the stream: a sans-I/O core (:class:`AlertEvaluator`) fed with
tick batches, closed candles and feed gaps, handing back the firings; its state snapshots to
bytes so that a processor can make it durable with its offsets."""

from main_api.alerts.evaluator import AlertEvaluator, SnapshotError

__all__ = ["AlertEvaluator", "SnapshotError"]
