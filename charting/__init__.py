"""The history API (Starlette) and the chart page.

- :func:`charting.app.create_app` / :func:`~charting.app.create_app_for_url`: the app.
- :class:`charting.settings.ApiSettings`: its settings. It reads through
  :class:`storage.reads.HistoryReads` (any store's).
- :class:`charting.client.HistoryClient`: the analysts' Python client (polars DataFrames).

See ``docs/history-api.md`` and ``docs/chart.md``.
"""

from charting.app import create_app, create_app_for_url
from charting.settings import ApiSettings

__all__ = ["ApiSettings", "create_app", "create_app_for_url"]
