"""A PySpark feature job for tests/specs/sparkray.yaml: writes `rows` rows of (x, y = 2x + 1) as CSV."""

from __future__ import annotations

import argparse

from pyspark.sql import SparkSession


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    spark = SparkSession.builder.appName("pipegen-sparkray-features").getOrCreate()
    frame = spark.range(args.rows).selectExpr("CAST(id AS DOUBLE) AS x", "CAST(id AS DOUBLE) * 2.0 + 1.0 AS y")
    frame.coalesce(1).write.mode("overwrite").option("header", True).csv(args.out)
    print(f"wrote {frame.count()} feature rows to {args.out}")
    spark.stop()


if __name__ == "__main__":
    main()
