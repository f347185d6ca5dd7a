"""Price alerts evaluated on the stream: a sans-I/O core (:class:`AlertEvaluator`) fed with
tick batches, closed candles and feed gaps, handing back the firings; its state is rows (one
per alert, one per stream), and it hands back the rows each round changed, so that a
processor can make them durable with its offsets."""

from main_api.alerts.evaluator import AlertEvaluator, SnapshotError

__all__ = ["AlertEvaluator", "SnapshotError"]
