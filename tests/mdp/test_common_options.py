"""Options several commands share: checked once, at the edge."""

from __future__ import annotations

import argparse

import pytest

from mdp.common_options import add_write_buffer_option, write_buffer_of


def buffer(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_write_buffer_option(parser)
    return write_buffer_of(parser.parse_args(list(argv)))


def test_the_write_buffer_is_given_in_mib() -> None:
    assert buffer("--write-buffer", "1.5") == 3 * 2**19
    assert buffer() == 64 * 2**20


@pytest.mark.parametrize("size", ["0", "-1", "inf", "nan", "1e-9"])
def test_a_write_buffer_of_no_finite_bytes_is_refused(size: str) -> None:
    with pytest.raises(ValueError, match="--write-buffer must be a size in MiB, more than 0"):
        buffer("--write-buffer", size)
