"""The trading service: orders, accounts, the paper venue and the event store (issue #15)."""
