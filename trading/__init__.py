"""The trading service: orders, accounts, the paper venue and their event store."""
