"""A small training script for specs/demo.yaml: fits a ridge regression and logs it to MLflow.

It is an ordinary MLflow script: pipegen's runtime starts the run and passes MLFLOW_RUN_ID and
MLFLOW_TRACKING_URI, so the plain `mlflow.start_run()` below logs into the pipeline's run.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import mlflow
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

DATA = Path(__file__).parent / "data" / "houses.csv"


def load() -> tuple[np.ndarray, np.ndarray]:
    """Read the demo data set (three features and a target)."""
    with DATA.open() as handle:
        rows = [[float(v) for v in row] for row in csv.reader(handle) if row and not row[0].startswith("#")]
    table = np.array(rows)
    return table[:, :-1], table[:, -1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--samples", type=int, default=400)
    args = parser.parse_args()

    x, y = load()
    x, y = x[: args.samples], y[: args.samples]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    with mlflow.start_run():
        model = Ridge(alpha=args.alpha).fit(x_train, y_train)
        predicted = model.predict(x_test)
        mlflow.log_params({"alpha": args.alpha, "samples": len(x)})
        mlflow.log_metric("rmse", float(np.sqrt(mean_squared_error(y_test, predicted))))
        mlflow.log_metric("r2", float(r2_score(y_test, predicted)))
        mlflow.sklearn.log_model(model, name="model")


if __name__ == "__main__":
    main()
