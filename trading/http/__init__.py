"""The trading service's REST interface (``/trading/v1``): a Starlette app over a running
:class:`~trading.service.shell.TradingService`, the read models' queries and the event store.
See ``docs/trading.md``, "HTTP interface"."""

from trading.http.app import create_app

__all__ = ["create_app"]
