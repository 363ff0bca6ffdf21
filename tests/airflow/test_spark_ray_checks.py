"""What Airflow cannot run of Spark and Ray is a located PG602 naming what it does run; and the Airflow environment
holds one pyspark (the spark provider's pyspark-client would overwrite its files)."""

from __future__ import annotations

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source

HEAD = "pipegen: 1\nname: s\nbackends:\n"


def errors(backends: str, command: str = "[app.py]") -> list[str]:
    text = HEAD + backends + f"steps:\n  - name: job\n    task: {{backend: b, command: {command}}}\n"
    checked = check_source(Source("s.yaml", text))
    assert checked.ok, [d.format() for d in checked.diagnostics]
    return [d.format() for d in compile_checked(checked, ["airflow"]).diagnostics]


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        (
            "  b: {type: spark, platform: kubernetes, kubernetes: {image: 'r/${secret.tok}', spark_version: 4.0.0}}\n",
            "s.yaml:4:62: error[PG602]: target 'airflow' cannot pass a secret in the image of backend 'b': it would "
            "be a plain value in the object; hint: registry credentials belong to the cluster (an image pull secret)",
        ),
        (
            "  b: {type: ray, cluster: {image: i, workers: [{name: w, gpus: 0.5}]}}\n",
            "s.yaml:4:64: error[PG602]: target 'airflow' cannot give a pod of backend 'b' 0.5 GPUs: Kubernetes "
            "assigns whole GPUs (nvidia.com/gpu); hint: ask for a whole number of GPUs per pod; share a GPU between "
            "Ray tasks with num_gpus in the code",
        ),
        (
            "  b: {type: ray, cluster: {image: i, workers: [{name: w}]}, runtime_env: {env_vars: {A: '$HOME'}}}\n",
            "s.yaml:4:89: error[PG602]: target 'airflow' cannot pass runtime_env text '$HOME' of backend 'b' "
            "unchanged: KubeRay's job submitter reads runtimeEnvYAML on a bash command line, where '$' and '`' "
            "expand; hint: write the value without '$' and '`' (env values belong in the step's env, which reaches "
            "the job as written)",
        ),
        (
            "  b: {type: ray, address: local}\n",
            "s.yaml:4:27: error[PG602]: target 'airflow' cannot run ray backend 'b' at address 'local': that is a Ray "
            "head `pipegen run` starts for one run; hint: give the job server of a running Ray cluster "
            "(http://head:8265), e.g. ${env.RAY_ADDRESS}",
        ),
        (
            "  b: {type: spark, master: '${env.MASTER}'}\n",
            "s.yaml:4:28: error[PG602]: target 'airflow' takes the master of spark backend 'b' from an Airflow "
            "connection, which cannot hold ${...} references; hint: write the master as plain text (the DAG reads it "
            "from connection 'pipegen_spark_b')",
        ),
    ],
)
def test_refused_with_a_located_pg602(backend: str, expected: str) -> None:
    assert errors(backend) == [expected]


@pytest.mark.parametrize(
    "backend",
    [
        "  b: {type: spark, platform: kubernetes, kubernetes: {image: i, spark_version: 4.0.0}}\n",
        "  b: {type: ray, cluster: {image: i, workers: [{name: w}]}}\n",
    ],
)
def test_the_spark_operator_and_kuberay_compile_with_a_secret_env_value(backend: str) -> None:
    text = (
        HEAD + backend + "steps:\n  - name: job\n    task: {backend: b, command: [app.py], env: {T: '${secret.x}'}}\n"
    )
    checked = check_source(Source("s.yaml", text))
    assert checked.ok and compile_checked(checked, ["airflow"]).diagnostics == []


def test_glue_arguments_must_be_key_value_pairs() -> None:
    backend = "  b: {type: spark, platform: glue, glue: {job_name: j}}\n"
    assert errors(backend, "[s3://x/job.py, --day, '1', --k]") == [
        "s.yaml:7:61: error[PG602]: target 'airflow' passes the arguments of Glue step 'job' as the run's "
        "`--key value` arguments; these are not pairs; hint: write the command as [script, --key, value, ...] with "
        "plain keys (the script must be the Glue job's)"
    ]
    assert errors(backend, "[s3://x/job.py, --day, '1']") == []


def test_one_pyspark_in_the_airflow_environment() -> None:
    """pyspark's Python API is the version of its jars: no second distribution of the `pyspark` package over it."""
    from importlib.metadata import version

    import pyspark

    assert pyspark.__version__ == version("pyspark")
