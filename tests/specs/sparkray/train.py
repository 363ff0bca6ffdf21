"""A Ray job for tests/specs/sparkray.yaml: fits the Spark step's features and logs into the pipeline's MLflow run.

An ordinary MLflow script: pipegen passes MLFLOW_RUN_ID, MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_ID through
the job's runtime_env, so the plain `mlflow.start_run()` below logs into the run the pipeline started.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import mlflow
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", required=True)
    args = parser.parse_args()
    rows = []
    for part in sorted(Path(args.features).glob("part-*.csv")):
        with part.open() as handle:
            rows += [(float(r["x"]), float(r["y"])) for r in csv.DictReader(handle)]
    x = [[a] for a, _ in rows]
    y = [b for _, b in rows]
    print(f"MLFLOW_RUN_ID={os.environ['MLFLOW_RUN_ID']} note={os.environ.get('PIPEGEN_STEP_NOTE')}")
    with mlflow.start_run():
        model = LinearRegression().fit(x, y)
        mlflow.log_metric("rows", len(rows))
        mlflow.log_metric("r2", float(r2_score(y, model.predict(x))))
        mlflow.set_tag("trained_on", os.environ.get("PIPEGEN_STEP_NOTE", ""))
        mlflow.sklearn.log_model(model, name="model")


if __name__ == "__main__":
    main()
