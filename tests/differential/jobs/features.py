"""A PySpark feature job for the spark_ray scenario: `rows` rows of (x, y = 2x + 1) as CSV, one part file.

    spark-submit features.py --rows N --out DIR

Like jobs/train.py it appends one JSON line {"argv", "env", "attempt", "started", "ended"} to
$PIPEGEN_DIFF_RECORD when it ends (spark-submit's driver inherits the step's environment on every engine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    """Write the features with Spark, then record the job."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    started = time.time()
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("pipegen-diff-features").getOrCreate()
    try:
        frame = spark.range(args.rows).selectExpr("CAST(id AS DOUBLE) AS x", "CAST(id AS DOUBLE) * 2.0 + 1.0 AS y")
        frame.coalesce(1).write.mode("overwrite").option("header", True).csv(args.out)
    finally:
        spark.stop()
    print(f"wrote {args.rows} feature rows to {args.out}")
    record = os.environ.get("PIPEGEN_DIFF_RECORD")
    if record:
        env = {k: v for k, v in sorted(os.environ.items()) if not k.startswith("PIPEGEN_DIFF_")}
        entry = {"argv": argv, "env": env, "attempt": 1, "started": started, "ended": time.time()}
        with open(record, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
