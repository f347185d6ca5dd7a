"""``mdp candles``: tick files (or the synthetic generator) to candles, offline.

It runs the very engine the live platform runs, fed with the files' ticks in file order, and
prints closed candles (and revisions, should late ticks arrive) as they come; ``--final-only``
prints each candle once, in its final version, sorted. A candle whose interval the input does
not cover to its end (no tick of its instrument at or after its close time: the last minute,
hour or day of a file) is never final: it is printed with status ``open``, and left out under
``--final-only`` (CSV and Parquet rows carry no status). A run in which every row is bad
exits 2, as does a file of Kraken's OHLC candles given as trades.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.candles import Candle, CandleStatus
from core.engine import CandleEngine, EmptyPolicy, EngineConfig, EngineOutput
from core.intervals import NS_PER_SECOND
from core.present import CandleFormat, by_suffix, candle_format, candle_formats
from core.ticks import TickBatch
from ingest.files import ReadReport, TickFileError
from ingest.files.detect import format_names
from ingest.files.reader import read_ticks
from ingest.synthetic import SyntheticFeed
from mdp.common_options import EXIT_BAD_INPUT, add_interval_option, intervals_of
from mdp.progress import Progress
from mdp.sinks import CandleSink, FormatSink

_SHOWN_PROBLEMS = 20


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "candles",
        help="compute candles from tick files, offline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_argument_group("input")
    source.add_argument(
        "files", nargs="*", type=Path, metavar="FILE", help="tick files, read in order"
    )
    source.add_argument(
        "--format",
        choices=format_names(),
        help="the files' format (default: detected from each file)",
    )
    source.add_argument(
        "--instrument",
        metavar="VENUE:SYMBOL",
        help="the instrument where a file does not name it (overrides Binance and Kraken names)",
    )
    source.add_argument(
        "--synthetic", action="store_true", help="use the seeded synthetic generator, not files"
    )
    source.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    source.add_argument("--rate", type=float, default=50.0, help="generator ticks/s per instrument")
    source.add_argument("--duration", type=float, default=600.0, help="generator seconds of ticks")
    rules = parser.add_argument_group("candles")
    add_interval_option(rules, "e.g. 1m")
    rules.add_argument(
        "--empty",
        choices=[p.value for p in EmptyPolicy],
        default=EmptyPolicy.SKIP.value,
        help="intervals without trades: no candle (skip) or a flat one at the last close (fill)",
    )
    rules.add_argument(
        "--lateness",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="allowed lateness (default 2)",
    )
    rules.add_argument(
        "--horizon",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="late ticks older than this behind the newest are rejected (default 3600)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--final-only",
        action="store_true",
        help="each final candle once, in its final version, sorted (not those the input ends"
        " inside of)",
    )
    output.add_argument(
        "--output-format",
        choices=[fmt.name for fmt in candle_formats()],
        help="default: from --output's suffix, else csv",
    )
    output.add_argument("--output", type=Path, metavar="FILE", help="write here, not to stdout")
    output.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        intervals = intervals_of(args)
        config = EngineConfig(
            intervals=intervals,
            lateness_ns=round(args.lateness * NS_PER_SECOND),
            horizon_ns=round(args.horizon * NS_PER_SECOND),
            empty=EmptyPolicy(args.empty),
            emit_open=False,
        )
        if args.synthetic == bool(args.files):
            raise ValueError("give tick files, or --synthetic, not both and not neither")
        sink_format = _sink_format(args.output_format, args.output)
    except ValueError as exc:
        return _fail(str(exc))
    report = ReadReport()
    try:
        batches = _synthetic(args) if args.synthetic else _from_files(args, report)
        first = next(batches, None)  # a file that cannot be read fails before any output
        if first is not None:
            batches = itertools.chain([first], batches)
        return _run_engine(CandleEngine(config), batches, report, args, sink_format)
    except TickFileError as exc:
        return _fail(str(exc))


def _from_files(args: argparse.Namespace, report: ReadReport) -> Iterator[TickBatch]:
    """Every file's batches in turn; a missing or unreadable file fails before any output."""
    readers = [
        read_ticks(path, format=args.format, instrument=args.instrument, report=report)
        for path in args.files
    ]
    return itertools.chain.from_iterable(readers)


def _synthetic(args: argparse.Namespace) -> Iterator[TickBatch]:
    feed = SyntheticFeed(seed=args.seed, rate=args.rate, duration=args.duration)
    yield from feed.batches()


def _run_engine(
    engine: CandleEngine,
    batches: Iterator[TickBatch],
    report: ReadReport,
    args: argparse.Namespace,
    sink_format: CandleFormat,
) -> int:
    sink = _open_sink(sink_format, args.output)
    progress = Progress(sys.stderr)
    final: dict[tuple[str, str, int], Candle] = {}
    totals = EngineOutput()
    ticks = 0
    written = 0

    def emit(output: EngineOutput) -> None:
        nonlocal written
        totals.rejected.extend(output.rejected[: max(0, _SHOWN_PROBLEMS - len(totals.rejected))])
        totals.duplicates += output.duplicates
        if args.final_only:
            final.update((candle.key, candle) for candle in output.candles)
        else:
            sink.write(output.candles)
            written += len(output.candles)

    for batch in batches:
        ticks += len(batch)
        emit(engine.feed(batch))
        if not args.quiet:
            rate = ticks / max(progress.elapsed, 1e-9)
            progress.update(f"mdp candles: {ticks:,} ticks read ({rate:,.0f}/s)")
    emit(engine.finish())
    if args.final_only:
        done = [candle for candle in final.values() if candle.status is not CandleStatus.OPEN]
        sink.write(sorted(done, key=lambda c: (c.instrument, c.interval, c.open_time)))
        written = len(done)
    sink.close()
    if not args.quiet:
        _report(report, totals, progress, ticks, written)
        if len(final) > written:
            print(
                f"mdp candles: {len(final) - written:,} candles left out: the input ends inside"
                " them, so they are not final",
                file=sys.stderr,
            )
    if report.rows and not report.ticks:
        return _fail(f"all {report.rows:,} rows were bad: no tick to make candles of")
    return 0


def _report(
    report: ReadReport, totals: EngineOutput, progress: Progress, ticks: int, written: int
) -> None:
    for bad in report.bad_rows[:_SHOWN_PROBLEMS]:
        print(f"mdp candles: bad row: {bad}", file=sys.stderr)
    for rejected in totals.rejected:
        tick = rejected.tick
        print(
            f"mdp candles: rejected trade {tick.trade_id} of {tick.instrument}:"
            f" {rejected.reason} ({rejected.detail})",
            file=sys.stderr,
        )
    progress.done(
        f"mdp candles: {ticks:,} ticks in {progress.elapsed:.1f}s; {report.summary()};"
        f" {totals.duplicates:,} repeated trade ids ignored; {written:,} candles written"
    )


def _sink_format(name: str | None, output: Path | None) -> CandleFormat:
    """``--output-format``, else the format of ``--output``'s suffix, else CSV."""
    found = candle_format(name) if name else by_suffix(output.suffix.lower()) if output else None
    fmt = found or candle_format("csv")
    assert fmt is not None
    if fmt.binary and output is None:
        raise ValueError(f"{fmt.name.capitalize()} output needs --output FILE")
    return fmt


def _open_sink(fmt: CandleFormat, output: Path | None) -> CandleSink:
    if output is None:
        return FormatSink(fmt, lambda data: sys.stdout.write(data.decode()), sys.stdout.flush)
    file = output.open("wb")
    return FormatSink(fmt, file.write, file.close)


def _fail(message: str) -> int:
    print(f"mdp candles: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT
