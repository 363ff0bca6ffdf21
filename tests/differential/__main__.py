"""python -m tests.differential SPEC... [--engines pipegen,airflow,kfp,stepfunctions] [--param k=v]... [--date YYYY-MM-DD]

[--compiled DIR] runs the outputs already in DIR instead of compiling the specs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.differential.harness import ENGINES, main, parse_params


def cli(argv: list[str] | None = None) -> int:
    """Parse the command line and run the harness; exit 0 only when every engine agrees on every spec."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.differential",
        description="Run specs on every engine here and compare their end states (exit 0 only when all agree).",
    )
    parser.add_argument("specs", nargs="+", metavar="SPEC")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated (default: all)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a run-time parameter")
    parser.add_argument("--date", metavar="YYYY-MM-DD", help="a scheduled run on that date (the schedule's first fire)")
    parser.add_argument(
        "--compiled",
        metavar="DIR",
        type=Path,
        help="run the outputs already in DIR (DIR/<target>/...) instead of compiling: to try a hand-edited lowering",
    )
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    try:
        params = parse_params(args.param)
    except ValueError as exc:
        parser.error(str(exc))
    return main(args.specs, engines, params, args.date, args.compiled.resolve() if args.compiled else None)


if __name__ == "__main__":
    sys.exit(cli())
