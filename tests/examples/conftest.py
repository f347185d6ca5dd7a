"""``mdp up``'s private data folder, as ``tests/mdp/test_up_command.py`` makes it."""

from tests.mdp.test_up_command import data_dir

__all__ = ["data_dir"]
