"""Synthetic pipelines for the benchmarks: N task steps on AWS Batch, as a chain or a 10-wide fan-out.

One shape description feeds every writer here, so the pipegen spec, the hand-written Airflow DAG,
the dag-factory YAML, the hand-written kfp pipeline, Argo WorkflowTemplate and Prefect flow describe the
same pipeline:

- chain:  s0 -> s1 -> ... -> s(N-1)
- fanout: s0 fans out to 10 chains; step i (i >= 1) runs after step max(i - 10, 0)

Every step submits one Batch job whose command carries the run's date and a run parameter, with
the spec's retry policy and timeout, which is what a feature or training fan-out looks like.

    python -m benchmarks.synth OUT_DIR [--sizes 10,100,1000] [--shapes chain,fanout]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SHAPES = ("chain", "fanout")
SIZES = (10, 100, 1000)
WIDTH = 10


def name_of(shape: str, n: int) -> str:
    """The pipeline's name, also its spec's file stem."""
    return f"synth-{shape}-{n}"


def upstream(shape: str, i: int) -> int | None:
    """The step that step i runs after, or None for the root."""
    if i == 0:
        return None
    return i - 1 if shape == "chain" else max(i - WIDTH, 0)


def spec_text(shape: str, n: int) -> str:
    """A pipegen spec of n task steps in the given shape."""
    lines = [
        "pipegen: 1",
        f"name: {name_of(shape, n)}",
        f"description: Synthetic {shape} of {n} Batch jobs (benchmarks).",
        "params: {shards: 64}",
        "defaults: {retries: 2, retry_delay: 1m, backoff: exponential, max_retry_delay: 10m, timeout: 1h}",
        "backends:",
        "  batch: {type: aws_batch, job_queue: ml-cpu, job_definition: features:7}",
        "steps:",
    ]
    for i in range(n):
        up = upstream(shape, i)
        lines.append(f"  - name: s{i}")
        if shape == "fanout" and up is not None and up != i - 1:
            lines.append(f"    after: [s{up}]")
        lines.append(
            "    task: {backend: batch, command: [python, -m, features.build, --part, "
            f"'{i}', --date, '${{run.date}}', --shards, '${{params.shards}}']}}"
        )
    # KFP and Argo run pipegen's runtime in an image of the team's own (PG604 without one).
    lines += [
        "targets:",
        "  kfp: {base_image: registry.example.com/ml/pipegen-runtime:0.1}",
        "  argo: {runtime_image: registry.example.com/ml/pipegen-runtime:0.1}",
    ]
    return "\n".join(lines) + "\n"


def airflow_dag_text(shape: str, n: int) -> str:
    """The DAG an Airflow user would write by hand for the same pipeline: BatchOperator per step."""
    name = name_of(shape, n)
    head = f'''"""{name}: hand-written equivalent of the synthetic pipeline."""

from datetime import timedelta

from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.sdk import DAG, Param

with DAG(
    dag_id="{name}",
    schedule=None,
    params={{"shards": Param(64)}},
    default_args={{
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(hours=1),
    }},
) as dag:
'''
    body = []
    for i in range(n):
        body.append(
            f"    s{i} = BatchOperator(\n"
            f'        task_id="s{i}",\n'
            f'        job_name="{name}-s{i}",\n'
            '        job_queue="ml-cpu",\n'
            '        job_definition="features:7",\n'
            "        container_overrides={\n"
            '            "command": ["python", "-m", "features.build", "--part", '
            f'"{i}", "--date", "{{{{ ds }}}}", "--shards", "{{{{ params.shards }}}}"],\n'
            "        },\n"
            "    )\n"
        )
    edges = [f"    s{upstream(shape, i)} >> s{i}\n" for i in range(1, n)]
    return head + "".join(body) + "".join(edges)


def _timedelta(seconds: int) -> dict[str, object]:
    # dag-factory 1.x builds objects from `__type__` (its `*_sec` keys are gone).
    return {"__type__": "datetime.timedelta", "seconds": seconds}


def dagfactory_yaml(shape: str, n: int) -> str:
    """The same pipeline as a dag-factory 1.x YAML config."""
    name = name_of(shape, n)
    tasks = {}
    for i in range(n):
        task: dict[str, object] = {
            "operator": "airflow.providers.amazon.aws.operators.batch.BatchOperator",
            "job_name": f"{name}-s{i}",
            "job_queue": "ml-cpu",
            "job_definition": "features:7",
            "container_overrides": {
                "command": [
                    "python",
                    "-m",
                    "features.build",
                    "--part",
                    str(i),
                    "--date",
                    "{{ ds }}",
                    "--shards",
                    "{{ params.shards }}",
                ]
            },
        }
        up = upstream(shape, i)
        if up is not None:
            task["dependencies"] = [f"s{up}"]
        tasks[f"s{i}"] = task
    config = {
        name: {
            "schedule": None,
            "params": {"shards": 64},
            "default_args": {
                "retries": 2,
                "retry_delay": _timedelta(60),
                "retry_exponential_backoff": 2.0,
                "max_retry_delay": _timedelta(600),
                "execution_timeout": _timedelta(3600),
            },
            "tasks": tasks,
        }
    }
    # JSON is YAML; it keeps the file free of any YAML writer's quirks.
    return json.dumps(config, indent=1) + "\n"


def kfp_pipeline_text(shape: str, n: int) -> str:
    """The same shape as a kfp pipeline of container components, as a kfp user would write it."""
    name = name_of(shape, n)
    head = f'''"""{name}: the synthetic pipeline's shape written for the kfp compiler directly."""

from kfp import dsl


@dsl.container_component
def build(part: str, date: str, shards: int):
    return dsl.ContainerSpec(
        image="registry.example.com/features:7",
        command=["python", "-m", "features.build"],
        args=["--part", part, "--date", date, "--shards", shards],
    )


@dsl.pipeline(name="{name}")
def pipeline(date: str, shards: int = 64):
'''
    body = []
    for i in range(n):
        body.append(f'    s{i} = build(part="{i}", date=date, shards=shards).set_retry(2, "60s", 2.0, "600s")\n')
        up = upstream(shape, i)
        if up is not None:
            body.append(f"    s{i}.after(s{up})\n")
    return head + "".join(body)


def argo_template(shape: str, n: int) -> dict[str, object]:
    """The WorkflowTemplate an Argo user would write by hand: one Batch-job template, a DAG task per step.

    Argo has no AWS Batch integration: a team runs its own small submit-and-wait image, given the queue, the
    definition and the job's command. The run's date comes from the creation time, the part from the task.
    """
    name = name_of(shape, n)
    date = "{{workflow.creationTimestamp.Y}}-{{workflow.creationTimestamp.m}}-{{workflow.creationTimestamp.d}}"
    part = "{{inputs.parameters.part}}"
    command = [
        "python",
        "-m",
        "features.build",
        "--part",
        part,
        "--date",
        date,
        "--shards",
        "{{workflow.parameters.shards}}",
    ]
    job = {
        "name": "batch-job",
        "inputs": {"parameters": [{"name": "part"}]},
        "retryStrategy": {
            "limit": 2,
            "retryPolicy": "Always",
            "backoff": {"duration": "1m", "factor": 2, "cap": "10m"},
        },
        "activeDeadlineSeconds": 3600,
        "container": {
            "image": "registry.example.com/ml/batch-submit:1",
            "command": ["batch-submit", "--queue", "ml-cpu", "--definition", "features:7"],
            "args": ["--name", "{{workflow.name}}-" + part, "--", *command],
        },
    }
    tasks = []
    for i in range(n):
        task: dict[str, object] = {
            "name": f"s{i}",
            "template": "batch-job",
            "arguments": {"parameters": [{"name": "part", "value": str(i)}]},
        }
        up = upstream(shape, i)
        if up is not None:
            task["depends"] = f"s{up}"
        tasks.append(task)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "shards", "value": "64"}]},
            "templates": [{"name": "main", "dag": {"tasks": tasks}}, job],
        },
    }


PREFECT_HEAD = '''"""NAME: hand-written equivalent of the synthetic pipeline."""

from prefect import flow, task
from prefect.runtime import flow_run


@task(retries=2, retry_delay_seconds=[60, 120], timeout_seconds=3600, task_run_name="s{part}")
def batch_job(part: int, run_date: str, shards: int) -> str:
    """Submit one features job to AWS Batch and wait for it."""
    import time

    import boto3

    batch = boto3.client("batch")
    command = ["python", "-m", "features.build", "--part", str(part), "--date", run_date, "--shards", str(shards)]
    job = batch.submit_job(
        jobName=f"NAME-s{part}",
        jobQueue="ml-cpu",
        jobDefinition="features:7",
        containerOverrides={"command": command},
    )
    while True:
        [found] = batch.describe_jobs(jobs=[job["jobId"]])["jobs"]
        if found["status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(10)
    if found["status"] == "FAILED":
        raise RuntimeError(f"Batch job {job['jobId']} failed: {found.get('statusReason')}")
    return job["jobId"]


@flow(name="NAME")
def pipeline(shards: int = 64) -> None:
    run_date = flow_run.scheduled_start_time.date().isoformat()
    s = {}
'''


def prefect_flow_text(shape: str, n: int) -> str:
    """The flow a Prefect user would write by hand: one Batch-job task, submitted once per step."""
    body = []
    for i in range(n):
        up = upstream(shape, i)
        wait = f", wait_for=[s[{up}]]" if up is not None else ""
        body.append(f"    s[{i}] = batch_job.submit({i}, run_date, shards{wait})\n")
    tail = "    for future in s.values():\n        future.result()\n"
    return PREFECT_HEAD.replace("NAME", name_of(shape, n)) + "".join(body) + tail


def write_specs(out: Path, shapes: tuple[str, ...] = SHAPES, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    """Write one spec per shape and size into out; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for shape in shapes:
        for n in sizes:
            path = out / f"{name_of(shape, n)}.yaml"
            path.write_text(spec_text(shape, n))
            paths.append(path)
    return paths


def main() -> None:
    """Write synthetic specs into a folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    shapes = tuple(args.shapes.split(","))
    for path in write_specs(args.out, shapes, sizes):
        print(path)


if __name__ == "__main__":
    main()
