"""Webhooks per account (``docs/main-api.md``, "Webhooks"): each firing of an account's alert
is POSTed, signed (:mod:`core.webhooks`), to each of the account's endpoints; a failed attempt
is tried again later on an exponential schedule with full jitter (:mod:`.schedule`), and one
that keeps failing ends in the account's dead letters, which it can read and replay.

The pure parts: :mod:`.schedule` (the retry schedule and the delivery's state machine),
:mod:`.urls` (which URLs an endpoint may have), :mod:`.event` (the body sent). The shells:
:mod:`.store` (SQL) and :mod:`.worker` (the asyncio loop that sends).
"""
