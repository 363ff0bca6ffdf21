"""Check cost: `pipegen compile --check` over 200 specs in one process, as CI runs it on every commit.

    .venv/bin/python -m benchmarks.check [--specs 200] [--repeat N] [--json FILE]

The specs are synthetic pipelines of 5 to 40 Batch steps, chains and fan-outs, each with its own name;
their outputs for all three targets are compiled first, so --check finds them current and exits 0.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import PIPEGEN, run_pipegen, time_command, write_results
from benchmarks.synth import name_of, spec_text

SIZES = (5, 10, 20, 40)


def write_repo(root: Path, count: int) -> list[Path]:
    """count specs with distinct names and a spread of sizes."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        shape, n = ("chain", "fanout")[k % 2], SIZES[k % len(SIZES)]
        name = f"team{k:03d}-{shape}-{n}"
        path = root / f"{name}.yaml"
        path.write_text(spec_text(shape, n).replace(f"name: {name_of(shape, n)}", f"name: {name}", 1))
        paths.append(path)
    return paths


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        specs = [str(p) for p in write_repo(Path(tmp) / "specs", args.specs)]
        out = str(Path(tmp) / "build")
        run_pipegen("compile", *specs, "-t", "all", "-o", out)
        check = time_command([PIPEGEN, "compile", *specs, "-t", "all", "-o", out, "--check"], args.repeat)
        validate = time_command([PIPEGEN, "validate", *specs], args.repeat)
        steps = sum(SIZES[k % len(SIZES)] for k in range(args.specs))
    write_results(
        args.json,
        "check",
        {"specs": args.specs, "steps": steps, "compile_check_all_targets_s": check, "validate_s": validate},
    )


if __name__ == "__main__":
    main()
