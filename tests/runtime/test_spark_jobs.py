"""The spark-submit command line the runtime builds, and the error it reads from spark-submit's output.

No JVM here: tests/runtime/test_spark_ray_run.py runs spark-submit for real.
"""

from __future__ import annotations

import io
import sys

import pytest

from pipegen.runtime.spark_jobs import _Tail, driver_env_conf, spark_submit_argv

MLFLOW = {"MLFLOW_RUN_ID": "r1", "MLFLOW_TRACKING_URI": "http://mlflow:5000"}


def test_every_backend_key_reaches_its_flag_in_a_fixed_order() -> None:
    argv = spark_submit_argv(
        application="s3://bucket/app.jar",
        arguments=["--day", "2026-12-01"],
        master="yarn",
        deploy_mode="client",
        conf={"spark.sql.shuffle.partitions": "8", "spark.app.name": "features"},
        driver={"cores": 2, "memory": "4g"},
        executors={"instances": 3, "cores": 4, "memory": "8g"},
        main_class="com.example.Features",
        py_files=["deps.zip", "more.py"],
        jars=["a.jar"],
        packages=["org.apache.spark:spark-avro_2.13:4.0.0"],
        spark_submit="spark-submit",
        python="/venv/bin/python",
    )
    assert argv == [
        "spark-submit",
        "--master",
        "yarn",
        "--deploy-mode",
        "client",
        # --conf sorted by key; the driver runs here, so its Python is this interpreter (executors keep theirs).
        "--conf",
        "spark.app.name=features",
        "--conf",
        "spark.pyspark.driver.python=/venv/bin/python",
        "--conf",
        "spark.sql.shuffle.partitions=8",
        "--driver-cores",
        "2",
        "--driver-memory",
        "4g",
        "--num-executors",
        "3",
        "--executor-cores",
        "4",
        "--executor-memory",
        "8g",
        "--class",
        "com.example.Features",
        "--py-files",
        "deps.zip,more.py",
        "--jars",
        "a.jar",
        "--packages",
        "org.apache.spark:spark-avro_2.13:4.0.0",
        "s3://bucket/app.jar",
        "--day",
        "2026-12-01",
    ]


def test_a_local_master_runs_pyspark_on_this_interpreter() -> None:
    """Without spark.pyspark.python the driver and its Python workers start whatever `python3` PATH finds."""
    argv = spark_submit_argv(application="job.py", master="local[2]")
    assert argv == [
        "spark-submit",
        "--master",
        "local[2]",
        "--deploy-mode",
        "client",
        "--conf",
        f"spark.pyspark.python={sys.executable}",
        "job.py",
    ]


@pytest.mark.parametrize("key", ["spark.pyspark.python", "spark.pyspark.driver.python"])
def test_the_users_python_wins(key: str) -> None:
    argv = spark_submit_argv(application="job.py", master="local[2]", conf={key: "/opt/py/bin/python"})
    assert [a for a in argv if a.startswith("spark.pyspark")] == [f"{key}=/opt/py/bin/python"]


def test_cluster_mode_sets_no_local_python_and_puts_the_env_in_the_drivers() -> None:
    """In cluster mode the driver runs on the cluster: the MLflow run reaches it through the manager's settings."""
    argv = spark_submit_argv(application="job.py", master="yarn", deploy_mode="cluster", environment=MLFLOW)
    confs = [argv[i + 1] for i, a in enumerate(argv) if a == "--conf"]
    assert confs == [
        "spark.yarn.appMasterEnv.MLFLOW_RUN_ID=r1",
        "spark.yarn.appMasterEnv.MLFLOW_TRACKING_URI=http://mlflow:5000",
    ]
    assert driver_env_conf("k8s://https://k8s:443", "cluster", MLFLOW) == {
        "spark.kubernetes.driverEnv.MLFLOW_RUN_ID": "r1",
        "spark.kubernetes.driverEnv.MLFLOW_TRACKING_URI": "http://mlflow:5000",
    }
    # Client mode: the driver is spark-submit's own process, which gets the environment directly.
    assert driver_env_conf("yarn", "client", MLFLOW) == {}


SPARK_OUTPUT = b"""\
26/12/02 00:16:52 INFO DAGScheduler: Job 1 finished: count at NativeMethodAccessorImpl.java:0, took 432.6 ms
rows 5
Traceback (most recent call last):
  File "/tmp/sr/fail.py", line 5, in <module>
    raise ValueError("boom: the input is empty")
ValueError: boom: the input is empty
26/12/02 00:16:53 INFO SparkContext: Invoking stop() from shutdown hook
26/12/02 00:16:53 INFO SparkUI: Stopped Spark web UI at http://192.0.2.2:4040
26/12/02 00:16:53 INFO ShutdownHookManager: Deleting directory /tmp/spark-3f0c
"""


def test_the_error_is_the_exception_spark_printed_before_its_shutdown_logging() -> None:
    sink = io.BytesIO()
    tail = _Tail(sink)
    # Written in pieces that split lines, as a pipe delivers them.
    for i in range(0, len(SPARK_OUTPUT), 37):
        tail.write(SPARK_OUTPUT[i : i + 37])
    assert sink.getvalue() == SPARK_OUTPUT
    assert tail.error() == "ValueError: boom: the input is empty"


def test_a_jvm_error_is_read_past_its_stack_frames() -> None:
    tail = _Tail(io.BytesIO())
    tail.write(
        b'Exception in thread "main" org.apache.spark.SparkException: Failed to get main class in JAR\n'
        b"\tat org.apache.spark.deploy.SparkSubmit.error(SparkSubmit.scala:1111)\n"
        b"\tat org.apache.spark.deploy.SparkSubmit.prepareSubmitEnvironment(SparkSubmit.scala:555)\n"
        b"26/12/02 00:16:53 INFO ShutdownHookManager: Shutdown hook called\n"
    )
    assert tail.error().startswith('Exception in thread "main" org.apache.spark.SparkException: Failed to get main')
