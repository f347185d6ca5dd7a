"""The trading service's partition filters, pure: which stream a partition publishes, which
command it applies, and the names of its consumer groups and outbox reader."""

from __future__ import annotations

from decimal import Decimal

from core import trading_commands as tc
from core.partitions import EVERY_ACCOUNT, Partition
from trading.commands import (
    COMMANDS_GROUP,
    Planned,
    Refused,
    commands_group,
    mine,
    plan,
    tracked_by,
)
from trading.followers import outbox_settings
from trading.service.book import account_of, aggregate_id, owns_stream

HALVES = (Partition(0, 2), Partition(1, 2))


def test_a_stream_belongs_to_its_account_s_partition() -> None:
    assert account_of(aggregate_id(42)) == 42
    for stream in ("order:1:x", "account:", "account:-1", "account:1x", "account:²", "1"):
        assert account_of(stream) is None
    for account in range(6):
        owners = [p for p in HALVES if owns_stream(p, aggregate_id(account))]
        assert owners == [Partition(account % 2, 2)]
        assert owns_stream(EVERY_ACCOUNT, aggregate_id(account))
    # a stream of no account has one owner too: partition 0
    assert [p for p in HALVES if owns_stream(p, "order:1:x")] == [HALVES[0]]


def planned(account: int | None) -> Planned:
    call = (
        plan(tc.Deposit(account=account, currency="USD", amount=Decimal(1)))
        if account is not None
        else Refused("undecodable", None, "not MessagePack")
    )
    return Planned("trading.commands", 0, 7, "deposit", account, call)


def test_a_command_is_applied_by_its_account_s_partition_only() -> None:
    for account in (0, 1, 2, 3, 2**63 - 1):
        appliers = [p for p in HALVES if mine(planned(account), p)]
        assert appliers == [Partition(account % 2, 2)]
        assert mine(planned(account), EVERY_ACCOUNT)
    # an undecodable record (no account) is refused and logged by partition 0 only
    assert [p for p in HALVES if mine(planned(None), p)] == [HALVES[0]]


def test_each_partition_has_its_own_groups_and_reader() -> None:
    assert commands_group(EVERY_ACCOUNT) == COMMANDS_GROUP == "trading.commands"
    assert commands_group(Partition(1, 2)) == "trading.commands.p1of2"
    assert outbox_settings(EVERY_ACCOUNT).name == "outbox:trading.events"  # as before
    assert outbox_settings(Partition(1, 2)).name == "outbox:trading.events.p1of2"


def test_a_tracking_row_names_the_partition_of_its_group() -> None:
    at = "@c1/trading.commands/3"
    assert tracked_by(f"trading.commands{at}", COMMANDS_GROUP, "c1") == (
        EVERY_ACCOUNT, "trading.commands/3",
    )  # fmt: skip
    assert tracked_by(f"trading.commands.p1of2{at}", COMMANDS_GROUP, "c1") == (
        Partition(1, 2), "trading.commands/3",
    )  # fmt: skip
    for other in (
        "trading.commands@c2/trading.commands/3",  # another cluster
        f"trading.commandsx{at}",  # another group
        f"trading.commands.p2of2{at}",  # no such partition
        f"trading.commands.p1of2.p0of2{at}",
        "trading.commands/no-at",
        "outbox:trading.events",
    ):
        assert tracked_by(other, COMMANDS_GROUP, "c1") is None, other
