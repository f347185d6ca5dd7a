"""Candle presentation: encode speed of :mod:`core.present` against the code it replaced.

For each road a candle takes to text or columns, candles/s of the new path, beside the same
road in the baseline revision (the tree before ``core.present``), measured in the same run:
the baseline tree is taken out of git (``git archive``) into a temporary folder and this
file runs there in a child process with ``--old``, so both sides are timed on the same
machine, the same candles and the same Python, in alternated rounds (``--rounds``) so that
a change in the machine's load falls on both. Both sides also hand back a digest of every
road's bytes: they must be equal (the presentation changed no byte).

Roads: the WebSocket wire's candle object; the history API's JSON, CSV and Arrow pages from
candles (rolled-up pages, and pages of rows without a ready form); ``mdp candles``' CSV and
JSON lines.

Usage: ``python -m bench.present [--candles N] [--repeat N] [--baseline REV] [--smoke]``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from bench.common import Figure, measure, print_table
from bench.history import INSTRUMENT, T0, candles
from core.candles import Candle

BASELINE: Final = "db50f61"
"""The revision before :mod:`core.present` (its parent on the helper's branch)."""
_ROOT: Final = Path(__file__).resolve().parent.parent
_PACKAGES: Final = (
    "bench",
    "charting",
    "core",
    "ingest",
    "mdp",
    "storage",
    "streams",
    "ws_gateway",
)

Road = Callable[[Sequence[Candle]], bytes]


def new_roads() -> dict[str, Road]:
    from core.present import Document, PageInfo, Scales, candle_format
    from mdp.sinks import FormatSink
    from ws_gateway.wire import candle_json

    def page(name: str) -> Road:
        fmt = candle_format(name)
        assert fmt is not None

        def encode(cs: Sequence[Candle]) -> bytes:
            info = PageInfo(INSTRUMENT, "1m", None, T0, T0, None, None)
            out = fmt.encoder(Document(scales=Scales.of(cs), page=info))
            return out.head() + out.candles(cs) + out.tail()

        return encode

    def table(name: str) -> Road:
        fmt = candle_format(name)
        assert fmt is not None

        def encode(cs: Sequence[Candle]) -> bytes:
            parts: list[bytes] = []
            sink = FormatSink(fmt, parts.append, lambda: None)
            sink.write(list(cs))
            sink.close()
            return b"".join(parts)

        return encode

    return {
        "wire candle object": lambda cs: b"".join([candle_json(c) for c in cs]),
        "API JSON page": page("json"),
        "API CSV page": page("csv"),
        "API Arrow page": page("arrow"),
        "mdp candles CSV": table("csv"),
        "mdp candles JSON lines": table("jsonl"),
    }


def old_roads() -> dict[str, Road]:  # the baseline tree's names (run there with --old)
    old: Any = importlib.import_module("charting.candle_formats")
    sinks: Any = importlib.import_module("mdp.sinks")
    from ws_gateway.wire import candle_json

    def page(kind: str) -> Road:
        def encode(cs: Sequence[Candle]) -> bytes:
            info = old.PageInfo(INSTRUMENT, "1m", None, T0, T0, None, None)
            out: Any = (
                old.JsonCandles(info)
                if kind == "json"
                else old.CsvCandles(info)
                if kind == "csv"
                else old.ArrowCandles(info, old.Scales.of(cs))
            )
            return bytes(out.head() + out.candles(cs) + out.tail())

        return encode

    def table(sink_class: Any) -> Road:
        def encode(cs: Sequence[Candle]) -> bytes:
            stream = io.StringIO()
            sink = sink_class(stream)
            sink.write(list(cs))
            sink.close()
            return stream.getvalue().encode()

        return encode

    return {
        "wire candle object": lambda cs: b"".join([candle_json(c) for c in cs]),
        "API JSON page": page("json"),
        "API CSV page": page("csv"),
        "API Arrow page": page("arrow"),
        "mdp candles CSV": table(sinks.CsvSink),
        "mdp candles JSON lines": table(sinks.JsonLinesSink),
    }


def run_roads(roads: dict[str, Road], n: int, repeat: int) -> dict[str, dict[str, Any]]:
    cs = candles(n)
    found = {}
    for name, road in roads.items():
        figure = measure(name, n, lambda road=road: road(cs), repeat)  # type: ignore[misc]
        digest = hashlib.sha256(road(cs)).hexdigest()
        found[name] = {"seconds": figure.seconds, "digest": digest}
    return found


def baseline(rev: str, n: int, repeat: int) -> dict[str, dict[str, Any]] | None:
    """The baseline tree's figures, measured by this file run there in a child process;
    None (said on stdout) when git cannot give the tree (no git, a shallow clone)."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(_ROOT), "archive", "--format=tar", rev, *_PACKAGES],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"bench.present: no baseline: git cannot give revision {rev} ({exc})")
        return None
    with tempfile.TemporaryDirectory(prefix="mdp-bench-present-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        (Path(folder) / "bench" / "present.py").write_bytes(Path(__file__).read_bytes())
        child = subprocess.run(
            [sys.executable, "-m", "bench.present", "--old", "--candles", str(n),
             "--repeat", str(repeat)],
            cwd=folder,
            env=os.environ | {"PYTHONPATH": folder},
            capture_output=True,
            text=True,
            check=True,
        )  # fmt: skip
    found: dict[str, dict[str, Any]] = json.loads(child.stdout)
    return found


Figures = dict[str, dict[str, Any]]


def _joined(before: Figures | None, more: Figures | None) -> Figures | None:
    """Two rounds' figures as one: every timed run of both (digests must agree)."""
    if before is None or more is None:
        return more if before is None else None
    for name, figure in more.items():
        assert figure["digest"] == before[name]["digest"], name
        before[name]["seconds"] += figure["seconds"]
    return before


def main(argv: Sequence[str] | None = None) -> dict[str, tuple[Figure, Figure]]:
    parser = argparse.ArgumentParser(prog="python -m bench.present", description=__doc__)
    parser.add_argument("--candles", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per round")
    parser.add_argument("--rounds", type=int, default=3, help="baseline and new, alternated")
    parser.add_argument("--baseline", default=BASELINE, metavar="REV")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--old", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.candles, args.repeat, args.rounds = 300, 2, 1
    if args.old:
        print(json.dumps(run_roads(old_roads(), args.candles, args.repeat)))
        return {}
    old, new = None, None
    for _ in range(args.rounds):  # alternated, so that the machine's load falls on both
        old = _joined(old, baseline(args.baseline, args.candles, args.repeat))
        new = _joined(new, run_roads(new_roads(), args.candles, args.repeat))
    assert new is not None
    pairs = {}
    for name, figures in new.items():
        after = Figure(f"{name}, core.present", args.candles, figures["seconds"])
        if old is None:
            print_table(f"{name}: {args.candles:,} candles", [after], after, "candles/s")
            continue
        before = Figure(f"{name}, before ({args.baseline})", args.candles, old[name]["seconds"])
        if figures["digest"] != old[name]["digest"]:
            raise SystemExit(f"bench.present: {name}: the bytes differ from {args.baseline}'s")
        print_table(f"{name}: {args.candles:,} candles", [before, after], before, "candles/s")
        pairs[name] = (before, after)
    if old is not None:
        print("\nevery road's bytes equal the baseline's")
    return pairs


if __name__ == "__main__":
    main()
