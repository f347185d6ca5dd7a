"""The trading service: orders, accounts and risk (``trading.domain``), the paper venue
(``trading.paper``) and event sourcing (``trading.store``); ``docs/trading.md``."""
