"""A toy aggregate for the store's tests: a counter account folded from tagged msgspec events.

The store is generic over a pure fold; this one is small enough to check by hand."""

from __future__ import annotations

import msgspec

from trading.store.codec import StateCodec, StructCodec


class Opened(msgspec.Struct, frozen=True, tag="opened", tag_field="kind"):
    account: int


class Deposited(msgspec.Struct, frozen=True, tag="deposited", tag_field="kind"):
    account: int
    amount: int


class Withdrawn(msgspec.Struct, frozen=True, tag="withdrawn", tag_field="kind"):
    account: int
    amount: int


ToyEvent = Opened | Deposited | Withdrawn


class Balance(msgspec.Struct, frozen=True):
    account: int
    cash: int
    moves: int


class NotOpenError(ValueError):
    """A move on an account that is not open, or an account opened twice."""


def apply(state: Balance | None, event: ToyEvent) -> Balance:
    """The pure fold step."""
    if isinstance(event, Opened):
        if state is not None:
            raise NotOpenError("opened twice")
        return Balance(event.account, 0, 0)
    if state is None:
        raise NotOpenError(f"{event.__struct_config__.tag} before opened")
    amount = event.amount if isinstance(event, Deposited) else -event.amount
    return Balance(state.account, state.cash + amount, state.moves + 1)


CODEC: StructCodec[ToyEvent] = StructCodec(ToyEvent)
STATE_CODEC: StateCodec[Balance] = StateCodec(Balance, "toy-balance")


def history(account: int, deposits: int) -> list[ToyEvent]:
    """An account opened, then ``deposits`` deposits of 1..n and a withdrawal every third."""
    events: list[ToyEvent] = [Opened(account)]
    for n in range(1, deposits + 1):
        events.append(Withdrawn(account, n) if n % 3 == 0 else Deposited(account, n))
    return events
