"""Every ``mdp candles`` command in the README works as written, on the files it names."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from tests.mdp.test_up_command import MDP

ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"^\.venv/bin/mdp (candles .*)$", re.MULTILINE)


def test_the_readme_candles_commands_run_on_the_files_they_name(tmp_path: Path) -> None:
    commands = COMMAND.findall((ROOT / "README.md").read_text())
    assert len(commands) >= 3
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    for command in commands:
        args = shlex.split(command)
        assert (ROOT / args[1]).is_file(), f"the README names {args[1]}, which is missing"
        done = subprocess.run(
            [str(MDP), *args],
            check=False,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{command}: {done.stderr}"
        assert done.stdout or "--output" in args, command
