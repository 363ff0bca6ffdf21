"""A training job for the differential scenarios: records what it received, logs fixed metrics into its run.

    python -m tests.differential.jobs.train [--metric NAME=VALUE]... [--fail-times N] [--crash-times N]
        [--exit-code C] [--sleep SECONDS] [--key TEXT] [--features DIR] [ANY MORE ARGS...]

It appends one JSON line {"argv", "env", "attempt", "started", "ended"} when it ends to $PIPEGEN_DIFF_RECORD (argv = everything after the
script, byte for byte; env = its environment); fails its first N attempts (counted per
tracking server and --key under $PIPEGEN_DIFF_STATE); logs the metrics and a `model` directory into the
MLflow run the orchestrator started (MLFLOW_RUN_ID), as a real training script's `mlflow.start_run()` does.
With --features (the CSV part files jobs/features.py wrote) it also logs their `rows` and `mean_y`: what it
read, so that an engine whose training job did not see the Spark step's output ends differently.
With --crash-times N its first N attempts log the metrics and then die at once (os._exit, as an OOM kill or a
lost node ends a job): MLflow never ends the run, which stays RUNNING unless the orchestrator's side ends it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def recorded_env() -> dict[str, str]:
    """The job's whole environment but the harness's own variables (compare.py picks what it compares)."""
    return {k: v for k, v in sorted(os.environ.items()) if not k.startswith("PIPEGEN_DIFF_")}


def attempt_number(key: str) -> int:
    """This job's attempt (1, 2, ...) for this tracking server and key."""
    state = Path(os.environ.get("PIPEGEN_DIFF_STATE") or tempfile.gettempdir()) / "attempts"
    state.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(f"{os.environ.get('MLFLOW_TRACKING_URI', '')}|{key}".encode()).hexdigest()[:20]
    counter = state / name
    # One line per attempt: appending is atomic enough for jobs that never run the same key concurrently.
    with counter.open("a") as handle:
        handle.write("x\n")
    return len(counter.read_text().splitlines())


def main(argv: list[str]) -> int:
    """Record, maybe fail, then log metrics and a model into the started run."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--metric", action="append", default=[])
    parser.add_argument("--fail-times", type=int, default=0)
    parser.add_argument("--crash-times", type=int, default=0)
    parser.add_argument("--exit-code", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--key", default="")
    parser.add_argument("--features", default=None)
    args, _ = parser.parse_known_args(argv)
    attempt = attempt_number(args.key or " ".join(argv))
    started = time.time()
    # Read now: mlflow.start_run() takes MLFLOW_RUN_ID out of the environment when its run ends.
    env = recorded_env()

    def write_record() -> None:
        record = os.environ.get("PIPEGEN_DIFF_RECORD")
        if record:
            entry = {"argv": argv, "env": env, "attempt": attempt, "started": started, "ended": time.time()}
            with open(record, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")

    try:
        return work(args, attempt, write_record)
    finally:
        write_record()


def feature_column(directory: Path, column: str) -> list[float]:
    """One column of every row of the CSV part files in a directory (Spark's output), in file order."""
    values: list[float] = []
    for part in sorted(directory.glob("part-*.csv")):
        with part.open(encoding="utf-8", newline="") as handle:
            values += [float(row[column]) for row in csv.DictReader(handle)]
    return values


def work(args: argparse.Namespace, attempt: int, write_record: Callable[[], None]) -> int:
    """Sleep, fail or crash when told to, else log the metrics and a model into the run."""
    if args.sleep:
        time.sleep(args.sleep)
    if not os.environ.get("MLFLOW_RUN_ID"):
        if attempt <= args.fail_times:
            print(f"failing on purpose: attempt {attempt} of the first {args.fail_times}", file=sys.stderr)
            return args.exit_code
        return 0  # a task step: no run to log into
    # This job uses no pandas, but `import mlflow` imports it when installed (its dataset registry): 1.6 s of
    # the 4 s import, in each of the suite's ~70 jobs. Absent, as in an image without pandas, mlflow skips it.
    sys.modules.setdefault("pandas", None)  # type: ignore[arg-type]
    import mlflow

    # As a real training script: mlflow.start_run() resumes the orchestrator's run (MLFLOW_RUN_ID) and ends it
    # FINISHED, or FAILED when the script exits with an error inside it.
    with mlflow.start_run():
        if attempt <= args.fail_times:
            print(f"failing on purpose: attempt {attempt} of the first {args.fail_times}", file=sys.stderr)
            sys.exit(args.exit_code)
        for item in args.metric:
            name, _, value = item.partition("=")
            mlflow.log_metric(name, float(value))
        if args.features is not None:
            ys = feature_column(Path(args.features), "y")
            mlflow.log_metric("rows", len(ys))
            mlflow.log_metric("mean_y", sum(ys) / len(ys) if ys else 0.0)
        if attempt <= args.crash_times:
            print(
                f"crashing on purpose: attempt {attempt} of the first {args.crash_times}", file=sys.stderr, flush=True
            )
            write_record()
            os._exit(args.exit_code)  # no `finally`, no atexit: the run stays RUNNING
        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "model"
            model.mkdir()
            (model / "MLmodel").write_text(
                f"artifact_path: model\nflavors: {{}}\nrun_id: {mlflow.active_run().info.run_id}\n"
            )
            mlflow.log_artifacts(str(model), "model")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
