"""Loop cost: `pipegen run specs/demo.yaml` end to end, as a user runs it on a laptop.

    .venv/bin/python -m benchmarks.loop [--repeat N] [--json FILE]

Each run happens in a fresh copy of the demo (spec and examples/), so MLflow's sqlite store is created
each time ("first run"); a second run in the same copy reuses the store ("next run").
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import PIPEGEN, ROOT, best, child_env, write_results


def _copy(into: Path) -> Path:
    (into / "specs").mkdir(parents=True)
    shutil.copy(ROOT / "specs" / "demo.yaml", into / "specs" / "demo.yaml")
    shutil.copytree(ROOT / "examples", into / "examples")
    return into


def _run(where: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [PIPEGEN, "run", "specs/demo.yaml"],
        check=True,
        cwd=where,
        env=child_env(),
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    first, following = [], []
    with tempfile.TemporaryDirectory() as tmp:
        _run(_copy(Path(tmp) / "warmup"))  # bytecode caches, as on a machine that has run it before
        for k in range(args.repeat):
            where = _copy(Path(tmp) / f"run{k}")
            first.append(_run(where))
            following.append(_run(where))
    write_results(
        args.json,
        "loop",
        {"first_run_s": best(first), "next_run_s": best(following), "runs": args.repeat},
    )


if __name__ == "__main__":
    main()
