"""Submit a Spark application with `spark-submit` and wait for it (the `submit` platform of a spark backend).

spark-submit is the job: in client mode the driver runs inside it, in cluster mode it waits for the driver
(YARN's and Kubernetes' spark-submit wait for the application by default). So the step's timeout and an
interrupt end spark-submit's whole process group, its exit code is the job's, and the last error line it
printed (a Python exception, a JVM error) is the step's error; the whole output, redacted, is the log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, cast

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.redacted_output import run_redacted

# Spark's own log lines (log4j's default `yy/MM/dd HH:mm:ss LEVEL logger: message`) and JVM stack frames: never
# the error a user wants to read first, though spark-submit prints them after the exception that ended the job.
_NOISE = re.compile(r"(\d\d/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARN|DEBUG|TRACE) |\s+at |\s+\.\.\. \d+ more|Traceback \()")
_TAIL_LINES = 200


def is_local_master(master: str) -> bool:
    """Whether the master runs Spark in spark-submit's own JVM (local, local[N], local[*], local-cluster[...])."""
    return master == "local" or master.startswith(("local[", "local-cluster["))


def driver_env_conf(master: str, deploy_mode: str, env: Mapping[str, str]) -> dict[str, str]:
    """Spark settings that put env into the driver's environment when the driver runs on the cluster.

    In client mode the driver is spark-submit's own process, which gets env directly. In cluster mode YARN
    reads spark.yarn.appMasterEnv.* and Kubernetes spark.kubernetes.driverEnv.*; a standalone master's
    submission client forwards the submitting process's environment (the REST gateway only SPARK_* names).
    """
    if deploy_mode != "cluster":
        return {}
    if master == "yarn" or master.startswith("yarn"):
        prefix = "spark.yarn.appMasterEnv."
    elif master.startswith("k8s://"):
        prefix = "spark.kubernetes.driverEnv."
    else:
        return {}
    return {prefix + name: value for name, value in env.items()}


def spark_submit_argv(
    *,
    application: str,
    arguments: Sequence[str] = (),
    master: str = "local[*]",
    deploy_mode: str = "client",
    conf: Mapping[str, str] | None = None,
    driver: Mapping[str, Any] | None = None,
    executors: Mapping[str, Any] | None = None,
    main_class: str | None = None,
    py_files: Sequence[str] = (),
    jars: Sequence[str] = (),
    packages: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
    spark_submit: str = "spark-submit",
    python: str = sys.executable,
) -> list[str]:
    """The spark-submit command line for one application: options in a fixed order, --conf sorted by key.

    python is the interpreter of the PySpark driver when it runs here (client mode): Spark would otherwise
    start `python3` from PATH. With a local master it is spark.pyspark.python (executors are threads of the
    same JVM and start Python workers here too); with a cluster master only the driver's,
    spark.pyspark.driver.python. A user's own setting of either wins.
    """
    settings = dict(conf or {})
    settings.update(driver_env_conf(master, deploy_mode, environment or {}))
    if deploy_mode == "client" and not {"spark.pyspark.python", "spark.pyspark.driver.python"} & settings.keys():
        key = "spark.pyspark.python" if is_local_master(master) else "spark.pyspark.driver.python"
        settings[key] = python
    argv = [spark_submit, "--master", master, "--deploy-mode", deploy_mode]
    for key, value in sorted(settings.items()):
        argv += ["--conf", f"{key}={value}"]
    sizes: list[tuple[str, Any]] = [
        ("--driver-cores", (driver or {}).get("cores")),
        ("--driver-memory", (driver or {}).get("memory")),
        ("--num-executors", (executors or {}).get("instances")),
        ("--executor-cores", (executors or {}).get("cores")),
        ("--executor-memory", (executors or {}).get("memory")),
    ]
    for flag, size in sizes:
        if size is not None:
            argv += [flag, str(size)]
    if main_class:
        argv += ["--class", main_class]
    for flag, items in (("--py-files", py_files), ("--jars", jars), ("--packages", packages)):
        if items:
            argv += [flag, ",".join(items)]
    return [*argv, application, *arguments]


def find_spark_submit() -> str:
    """spark-submit beside this interpreter (pyspark's), else the first on PATH; RuntimeFailure when there is none."""
    beside = Path(sys.executable).parent / "spark-submit"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("spark-submit")
    if found is None:
        raise RuntimeFailure("spark-submit not found: install pyspark (pipegen's [spark] extra) or Spark itself")
    return found


class _Tail:
    """A binary sink that writes through and keeps the last lines, to name the job's error."""

    def __init__(self, sink: IO[bytes] | None) -> None:
        self.sink = sink
        self.lines: deque[str] = deque(maxlen=_TAIL_LINES)
        self._partial = b""

    def write(self, data: bytes) -> int:
        if self.sink is not None:
            self.sink.write(data)
        else:
            sys.stdout.buffer.write(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        self.lines.extend(line.decode("utf-8", "replace").rstrip() for line in complete)
        return len(data)

    def flush(self) -> None:
        (self.sink if self.sink is not None else sys.stdout.buffer).flush()

    def error(self) -> str:
        """The last line that is not Spark's logging or a stack frame: the exception or error that ended the job."""
        lines = [*self.lines, self._partial.decode("utf-8", "replace").rstrip()]
        said = [line for line in lines if line.strip() and not _NOISE.match(line)]
        return said[-1].strip()[:500] if said else ""


def spark_job(
    *,
    application: str,
    arguments: Sequence[str] = (),
    master: str = "local[*]",
    deploy_mode: str = "client",
    conf: Mapping[str, str] | None = None,
    driver: Mapping[str, Any] | None = None,
    executors: Mapping[str, Any] | None = None,
    main_class: str | None = None,
    py_files: Sequence[str] = (),
    jars: Sequence[str] = (),
    packages: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
    timeout_seconds: float | None = None,
    cwd: str | None = None,
    output: IO[bytes] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Run spark-submit for the application and wait; RuntimeFailure with the job's own error when it fails.

    environment (the step's env, a training step's MLflow run) reaches the driver: spark-submit's environment in
    client mode, the cluster manager's driver-environment settings in cluster mode. output receives the
    redacted log (default: this process's stdout); stop, when set from another thread, ends the job.
    """
    spark_submit = find_spark_submit()
    argv = spark_submit_argv(
        application=application,
        arguments=arguments,
        master=master,
        deploy_mode=deploy_mode,
        conf=conf,
        driver=driver,
        executors=executors,
        main_class=main_class,
        py_files=py_files,
        jars=jars,
        packages=packages,
        environment=environment,
        spark_submit=spark_submit,
    )
    env = dict(os.environ)
    # pyspark's spark-submit finds SPARK_HOME through the `python3` on PATH: this interpreter's, first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(environment or {})
    tail = _Tail(output)
    try:
        returncode = run_redacted(
            argv, env=env, cwd=cwd, timeout=timeout_seconds, output=cast(IO[bytes], tail), stop=stop
        )
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(
            f"Spark application {application} did not finish within {timeout_seconds:g}s; it was stopped"
        ) from None
    if returncode != 0:
        said = tail.error()
        raise RuntimeFailure(
            f"Spark application {application} failed (spark-submit exit code {returncode})"
            + (f": {said}" if said else "")
        )
    return {"application": application, "status": "succeeded"}
