"""Loop cost: `pipegen run specs/demo.yaml` end to end, as a user runs it on a laptop.

    .venv/bin/python -m benchmarks.loop [--repeat N] [--json FILE]

Each run happens in a fresh copy of the demo (spec and examples/), so MLflow's sqlite store is created
and pipegen's tracking worker started each time; a second run in the same copy reuses the store and finds the
worker warm ("next run"), as a user's edit-run loop does. A new store is a copy of an empty one migrated once
per MLflow version into the user's cache (pipegen.localrun.store_seed): "first run ever" starts with an empty
cache (the migrations run), "first run" in a new directory of a machine that has run pipegen before.

Each run is split into the training script's own time (its process from start to exit, which `pipegen run`
writes beside the step's log) and pipegen's overhead: the rest of the wall time (the `pipegen`
process starting and checking the spec, the MLflow calls before and after training, the gate).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import PIPEGEN, ROOT, best, child_env, write_results
from pipegen.localrun import default_tracking_uri
from pipegen.localrun.jobs import command_timing_path
from pipegen.localrun.tracker import stop_worker


def _copy(into: Path) -> Path:
    (into / "specs").mkdir(parents=True)
    shutil.copy(ROOT / "specs" / "demo.yaml", into / "specs" / "demo.yaml")
    shutil.copytree(ROOT / "examples", into / "examples")
    return into


def _run(where: Path, cache: Path) -> tuple[float, float]:
    """The run's wall time and the training script's own time, in seconds."""
    before = set((where / ".pipegen" / "logs").glob("*"))
    start = time.perf_counter()
    subprocess.run(
        [PIPEGEN, "run", "specs/demo.yaml"],
        check=True,
        cwd=where,
        env=child_env(PIPEGEN_CACHE_DIR=str(cache)),
        capture_output=True,
    )
    total = time.perf_counter() - start
    (log,) = set((where / ".pipegen" / "logs").glob("*")) - before
    timing = json.loads(command_timing_path(log / "train.log").read_text())
    return total, float(timing["seconds"])


def _stop(where: Path) -> None:
    """Stop the copy's tracking worker: no benchmark leaves processes behind."""
    if stop_worker(where, default_tracking_uri(where)) is None:
        print(f"warning: no tracking worker answered for {where}", file=sys.stderr)


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ever: list[tuple[float, float]] = []
    first: list[tuple[float, float]] = []
    following: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        warmup = _copy(Path(tmp) / "warmup")
        _run(warmup, cache)  # bytecode caches and the migrated store, as on a machine that has run it before
        _stop(warmup)
        for k in range(args.repeat):
            new = _copy(Path(tmp) / f"ever{k}")
            try:
                ever.append(_run(new, Path(tmp) / f"cache{k}"))
            finally:
                _stop(new)
            where = _copy(Path(tmp) / f"run{k}")
            try:
                first.append(_run(where, cache))
                following.append(_run(where, cache))
            finally:
                _stop(where)
    results: dict[str, object] = {"runs": args.repeat}
    for name, samples in (("first_run_ever", ever), ("first_run", first), ("next_run", following)):
        results[f"{name}_s"] = best(total for total, _ in samples)
        results[f"{name}_training_s"] = best(training for _, training in samples)
        # Per run, then the best: the two parts of one run belong together.
        results[f"{name}_overhead_s"] = best(total - training for total, training in samples)
    write_results(args.json, "loop", results)


if __name__ == "__main__":
    main()
