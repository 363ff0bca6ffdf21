"""The Airflow engine: the compiled DAG run once with Airflow 3's `dag.test()` (run with .venv-airflow).

Airflow reads its configuration when first imported, so AIRFLOW_HOME, the DAGS_FOLDER (holding the compiled
DAG file) and a copy of the migrated metadata DB are fixed before anything imports it. AWS operators reach the
parent's moto server through the `aws_default` connection (AIRFLOW_CONN_AWS_DEFAULT with extra.endpoint_url);
the runtime and the jobs through AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tests.differential.engines import Request, Result, StepResult, load_pipeline, settle_evaluations
from tests.differential.engines.supervise import Progress, engine_main, log_path, scheduled_instant, typed_params

# Airflow task states -> the harness's outcomes. A short-circuit that skips its downstream leaves them
# `skipped`; a failed upstream leaves them `upstream_failed` (they never started).
_OUTCOMES = {"success": "passed", "skipped": "skipped", "failed": "failed", "upstream_failed": "not_run"}


def airflow_environment(request: Request, home: Path) -> dict[str, str]:
    """The environment Airflow, its tasks and their jobs run with."""
    env = dict(request.env)
    conn: dict[str, Any] = {"conn_type": "aws", "extra": {}}
    if env.get("AWS_ACCESS_KEY_ID"):
        conn.update(login=env["AWS_ACCESS_KEY_ID"], password=env.get("AWS_SECRET_ACCESS_KEY", ""))
    if env.get("AWS_ENDPOINT_URL"):
        conn["extra"]["endpoint_url"] = env["AWS_ENDPOINT_URL"]
    region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION")
    if region:
        conn["extra"]["region_name"] = region
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        # The generated DAG's TRACKING_URI is '' unless the spec names one: the runtime then reads this.
        MLFLOW_TRACKING_URI=request.tracking_uri,
        AIRFLOW_CONN_AWS_DEFAULT=json.dumps(conn, sort_keys=True),
        # SparkSubmitOperator runs `spark-submit` from PATH and the driver's `python3`: this venv's (pyspark's),
        # as the DAG's header asks of a worker.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    env.update(header_connections(request.compiled_file("airflow", ".py")))
    return env


def header_connections(dag_file: Path) -> dict[str, str]:
    """The AIRFLOW_CONN_<ID>='<json>' lines of a generated DAG's header (its Spark masters), as a deployment sets them."""
    found: dict[str, str] = {}
    for line in dag_file.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        match = re.fullmatch(r"#\s+(AIRFLOW_CONN_[A-Z0-9_]+)=(.+)", line)
        if match is not None:
            found[match.group(1)] = shlex.split(match.group(2))[0]
    return found


def prepare_home(request: Request) -> Path:
    """AIRFLOW_HOME in the workdir: a copy of the migrated DB and the compiled DAG in its DAGS_FOLDER."""
    if not request.airflow_db:
        raise ValueError("the airflow engine needs airflow_db (a migrated metadata DB) in its request")
    home = Path(request.workdir) / "airflow-home"
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(request.airflow_db, home / "airflow.db")
    source = request.compiled_file("airflow", ".py")
    shutil.copyfile(source, dags / source.name)
    return home


def rejected_evaluations(dag_run: Any, task_ids: list[str]) -> set[str]:
    """The short-circuit evaluations whose condition was False (the run was judged and not promoted).

    A False condition with downstream tasks skips them and leaves the skip list in XCom (`skipmixin_key`)
    instead of a return value; with none downstream it returns False as its XCom return value.
    """
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.key, XComModel.value).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.key.in_(["skipmixin_key", "return_value"]),
                XComModel.task_id.in_(task_ids),
            )
        ).all()
    rejected: set[str] = set()
    for task_id, key, value in rows:
        decoded = json.loads(value) if isinstance(value, str | bytes) else value
        if key == "skipmixin_key" or decoded is False:
            rejected.add(task_id)
    return rejected


def step_outcomes(request: Request, dag_run: Any) -> dict[str, StepResult]:
    """Each spec step's outcome from its task instance (task_id = step name)."""
    pipeline = load_pipeline(request.spec)
    states = {ti.task_id: (str(ti.state) if ti.state is not None else "none") for ti in dag_run.get_task_instances()}
    # An on_fail: skip evaluation is a short-circuit task: it succeeds either way; its XCom says the verdict.
    skips = [s.name for s in pipeline.steps if s.kind == "evaluate" and s.body.on_fail == "skip"]
    rejected = rejected_evaluations(dag_run, skips) if skips else set()
    steps: dict[str, StepResult] = {}
    for step in pipeline.steps:
        state = states.get(step.name)
        if state is None:
            steps[step.name] = StepResult("not_run", "no task instance")
        elif step.name in rejected and state == "success":
            steps[step.name] = StepResult("rejected")  # the reasons are filled in by settle_evaluations
        elif state in _OUTCOMES:
            steps[step.name] = StepResult(_OUTCOMES[state])
        else:
            # Still scheduled, queued, up_for_retry... when dag.test() returned: it never finished.
            steps[step.name] = StepResult("not_run" if state in ("none", "scheduled", "queued") else "failed", state)
    return steps


def run(request: Request, progress: Progress) -> Result:
    """Run the compiled DAG once with dag.test(), params as run_conf, the scheduled time as logical date."""
    if "airflow" in sys.modules:
        raise RuntimeError("airflow was imported before AIRFLOW_HOME was set")
    pipeline = load_pipeline(request.spec)
    params = typed_params(request)
    home = prepare_home(request)
    os.environ.update(airflow_environment(request, home))
    os.chdir(request.workdir)

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(home / "dags"))
    log = str(log_path(request))
    if bag.import_errors or pipeline.name not in bag.dags:
        # A DAG that does not load is a result (nothing ran), not a broken harness.
        problem = "; ".join(f"{path}: {error}" for path, error in sorted(bag.import_errors.items()))
        print(f"DAG {pipeline.name} did not load: {problem or 'not in the DagBag'}", flush=True)
        reason = f"the DAG did not load: {(problem or 'not in the DagBag').splitlines()[-1][:200]}"
        return Result(
            request.engine, "failed", {s.name: StepResult("not_run", reason) for s in pipeline.steps}, 0.0, log
        )
    dag = bag.dags[pipeline.name]
    when = scheduled_instant(request)
    started = time.monotonic()
    # A scheduled run's logical date is its fire time (pipegen's DAGs use CronTriggerTimetable); a manual
    # run has none, as Airflow 3's manual runs may not.
    dag_run = dag.test(run_after=when, logical_date=when, run_conf=params or None)
    wall = time.monotonic() - started
    print(f"dag.test() ended: run {dag_run.run_id} {dag_run.state} after {wall:.1f}s", flush=True)
    steps = step_outcomes(request, dag_run)
    status = "succeeded" if str(dag_run.state) == "success" else "failed"
    progress.engine_ended(Result(request.engine, status, steps, round(wall, 2), log))
    return Result(request.engine, status, settle_evaluations(request, steps), round(wall, 2), log)


if __name__ == "__main__":
    sys.exit(engine_main(run))
