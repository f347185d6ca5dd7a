"""The trading service's write side: the account aggregate (an account and its orders, the
fold of one event stream), the order saga (a sans-I/O state machine: every step an event) and
:class:`~trading.service.shell.TradingService`, the thin async shell that stores, routes and
publishes what the saga decides. ``docs/trading.md``, "The order saga and the service"."""
