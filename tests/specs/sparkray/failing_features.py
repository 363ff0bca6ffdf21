"""A PySpark job that fails after Spark has started (tests/specs/sparkray-failing.yaml)."""

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("pipegen-sparkray-failing").getOrCreate()
if spark.range(0).count() == 0:
    raise ValueError("features: the input partition is empty")
