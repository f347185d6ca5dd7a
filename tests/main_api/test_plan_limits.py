"""The plans' limits from an operator's TOML file (``main_api/plan_limits.py``, ``mdp main-api
--plan-limits``): a file that lowers a limit is enforced (403 ``plan-limit`` at the file's
number, and its fallback for a plan it does not name); a bad file is refused naming the plan
and the field, and ``mdp main-api`` refuses to start with it (exit code 2) before it needs a
database."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from access.settings import TokenSettings
from main_api.plan_limits import (
    MAX_FILE_BYTES,
    PlanLimitsBook,
    PlanLimitsError,
    load_plan_limits,
    parse_plan_limits,
)
from main_api.settings import DEFAULT_PLAN_LIMITS, FALLBACK_LIMITS, MainApiSettings, PlanLimits
from tests.main_api.conftest import ALICE, BOB, Api, refusal, served
from tests.support import tokens
from tests.trading.http.test_command import REPO

LOWER = """
[plans.pro]
watchlists = 1
instruments = 2
alerts = 3

[fallback]
watchlists = 0
instruments = 0
alerts = 0
webhooks = 0
"""


@pytest.fixture
async def lowered(schema: tuple[str, str], tmp_path: Path) -> AsyncIterator[Api]:
    """The API with the limits of :data:`LOWER`, read from a file."""
    url, name = schema
    (tmp_path / "limits.toml").write_text(LOWER)
    book = load_plan_limits(tmp_path / "limits.toml")
    settings = MainApiSettings(
        url, TokenSettings(keys=tokens.keyset()), schema=name, plan_limits=book.plans,
        fallback_limits=book.fallback,
    )  # fmt: skip
    async with served(settings) as made:
        yield made


async def test_a_file_that_lowers_a_limit_is_enforced(lowered: Api) -> None:
    alice, bob = lowered.client(ALICE, plan="pro"), lowered.client(BOB, plan="free")
    assert (await alice.post("/watchlists", json={"name": "one"})).status_code == 201
    over = await alice.post("/watchlists", json={"name": "two"})
    assert refusal(over, 403) == ("plan-limit", "watchlists")
    assert over.json()["limit"] == 1
    three = {"name": "x", "instruments": ["SYNTH:BTCUSD", "SYNTH:ETHUSD", "BINANCE:BTCUSDT"]}
    assert refusal(await alice.post("/watchlists", json=three), 403)[0] == "plan-limit"
    # a plan the file does not name gets the file's fallback: here, nothing
    assert refusal(await bob.post("/watchlists", json={"name": "one"}), 403) == (
        "plan-limit", "watchlists",
    )  # fmt: skip


def test_a_file_replaces_the_table_and_keeps_the_defaults_it_does_not_name() -> None:
    book = parse_plan_limits("[plans.pro]\nwatchlists = 7\ninstruments = 8\nalerts = 9\n")
    assert dict(book.plans) == {"pro": PlanLimits(watchlists=7, instruments=8, alerts=9)}
    assert book.fallback == FALLBACK_LIMITS
    assert PlanLimitsBook() == PlanLimitsBook(DEFAULT_PLAN_LIMITS, FALLBACK_LIMITS)


@pytest.mark.parametrize(
    ("text", "told"),
    [
        ("[plans.pro]\nwatchlists = 1\ninstruments = 2\nalerts = 5000\n",
         "plan pro: alerts must be 0 to 2000, not 5000"),
        ("[plans.pro]\nwatchlists = 1\ninstruments = -1\nalerts = 5\n",
         "plan pro: instruments must be 0 to 500, not -1"),
        ("[plans.pro]\nwatchlists = true\ninstruments = 1\nalerts = 5\n",
         "plan pro: watchlists must be 0 to 100, not True"),
        ("[plans.pro]\nwatchlists = 1\nalerts = 5\n", "plan pro: missing instruments"),
        ("[plans.pro]\nwatchlists = 1\ninstruments = 1\nalerts = 5\nfeeds = 2\n",
         "plan pro: unknown feeds"),
        ("[plans.Pro]\nwatchlists = 1\ninstruments = 1\nalerts = 5\n", "plan name 'Pro'"),
        ("[plans.pro]\nwatchlists = 1\ninstruments = 1\nalerts = 5\n[fallback]\nalerts = 1\n",
         "fallback: missing instruments, watchlists"),
        ("plans = 1\n", "the plan limits file has no [plans.NAME] tables"),
        ("[limits.pro]\nwatchlists = 1\n", "unknown limits"),
        ("[plans.pro\n", "the plan limits file is not TOML"),
    ],
)  # fmt: skip
def test_a_bad_file_is_refused_naming_the_plan_and_the_field(text: str, told: str) -> None:
    with pytest.raises(PlanLimitsError, match="^" + re.escape(told)):
        parse_plan_limits(text)


def test_a_file_past_its_size_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "limits.toml"
    path.write_text("#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(PlanLimitsError, match=f"over {MAX_FILE_BYTES} bytes"):
        load_plan_limits(path)


def test_the_command_refuses_a_bad_file_at_start(tmp_path: Path) -> None:
    path = tmp_path / "limits.toml"
    path.write_text("[plans.pro]\nwatchlists = 1\ninstruments = 2\nalerts = 5000\n")
    done = subprocess.run(
        [sys.executable, "-m", "mdp.commands.main_api", "--plan-limits", str(path)],
        cwd=REPO, capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "mdp main-api: error: --plan-limits: plan pro: alerts must be 0 to 2000, not 5000\n"
    )
