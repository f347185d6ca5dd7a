"""The main API: what a user keeps on the platform (profile, watchlists, price alerts and
their notifications) under ``/api/v1``, and the alert evaluator that fires the alerts on the
market stream (``main_api/alerts/``; ``docs/main-api.md``)."""

from main_api.app import PREFIX, create_app

__all__ = ["PREFIX", "create_app"]
