"""The spark and ray backend keys: located diagnostics for bad values, and every target's located PG602 until it
maps them (each names the backend types it does support)."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from pipegen.compiler import compile_checked
from pipegen.frontend import check_file, check_source
from pipegen.loader import Source
from pipegen.spec import variants_text
from pipegen.targets import available
from tests.cases import REPO, SCHEMA, TARGETED_SPECS

SPEC = REPO / "tests" / "specs" / "sparkray.yaml"

BAD = """\
pipegen: 1
name: bad
backends:
  sp:
    type: spark
    driver: {cores: 0, memory: 2gb}
    executors: {instances: 1, memory: "512"}
    packages: [not-a-coordinate]
  local-cluster:
    type: spark
    master: local[2]
    deploy_mode: cluster
  ry:
    type: ray
    address: local
    entrypoint_resources: {cpus: -1}
steps:
  - name: a
    task: {backend: sp, command: [a.py]}
  - name: b
    task: {backend: local-cluster, command: [b.py]}
  - name: c
    task: {backend: ry, command: [python, c.py]}
"""


def test_bad_values_are_located_diagnostics() -> None:
    lines = [d.format() for d in check_source(Source("bad.yaml", BAD)).diagnostics]
    assert lines == [
        "bad.yaml:6:21: error[PG210]: cores 0 is below the limit: at least 1; hint: use a value from 1 to 2147483647",
        "bad.yaml:6:32: error[PG202]: Spark memory '2gb' is not a size such as 512m or 4g; hint: write a whole number"
        " and one of k, m, g, t (the JVM's -Xmx form, which spark-submit passes on)",
        "bad.yaml:7:39: error[PG202]: Spark memory '512' is not a size such as 512m or 4g; hint: write a whole number"
        " and one of k, m, g, t (the JVM's -Xmx form, which spark-submit passes on)",
        "bad.yaml:8:16: error[PG202]: invalid value 'not-a-coordinate' for backends.sp.packages[0]: must match"
        " ^[^:\\s,]+:[^:\\s,]+:[^:\\s,]+$; hint: see 'pipegen schema' for the accepted values",
        "bad.yaml:10:5: error[PG400]: deploy_mode 'cluster' needs a cluster manager; master 'local[2]' runs Spark in"
        " this process; hint: use deploy_mode: client with a local master, or a cluster master (yarn, spark://, k8s://)",
        "bad.yaml:16:34: error[PG210]: cpus -1.0 is below the limit: at least 0 (Ray refuses negative entrypoint"
        " resources); hint: use a value from 0 or more, finite",
    ]


def test_the_test_spec_is_valid_and_matches_the_schema() -> None:
    assert check_file(str(SPEC)).diagnostics == []
    jsonschema.validate(yaml.safe_load(SPEC.read_text()), json.loads(SCHEMA.read_text()))


# The targets that do not run spark-submit and a Ray address (the others compile tests/specs/sparkray.yaml:
# cases.TARGETED_SPECS, and their tests run it).
REFUSING = sorted(set(available()) - set(TARGETED_SPECS[SPEC]))


@pytest.mark.parametrize("target", REFUSING)
def test_every_target_refuses_spark_and_ray_steps_naming_what_it_supports(target: str) -> None:
    result = compile_checked(check_file(str(SPEC)), [target])
    assert not result.ok and result.outputs == []
    refusals = [d for d in result.diagnostics if d.code == "PG602"]
    support = available()[target].support
    supported = ", ".join(support.backends)
    # A target without the type refuses it at the step's backend; one that runs the type in other ways (Step
    # Functions: EMR, Glue...; Argo: the Spark Operator, KubeRay) refuses the way at the backend's key that
    # chooses it (spark's platform, here by default; ray's address), naming the ways it runs.
    at = {"spark": (20, 5), "ray": (28, 5)}
    assert len(refusals) == 2
    for d, kind in zip(refusals, ("spark", "ray"), strict=True):
        assert d.location is not None
        if kind in support.backends:
            assert (d.location.line, d.location.column) == at[kind]
            assert (
                f"on a {kind} backend with {variants_text(kind, [kind + ('.submit' if kind == 'spark' else '.address')])}"
                in d.message
            )
            assert d.hint.startswith(
                f"{available()[target].title} runs {kind} with {variants_text(kind, support.variants)}"
            )
        else:
            assert (d.location.line, d.location.column) == ((38, 16) if kind == "spark" else (42, 16))
            assert f"on backend type '{kind}'" in d.message
            assert f"supports backend types: {supported}" in d.hint


PLATFORMS = """\
pipegen: 1
name: platforms
backends:
  emr-missing-ids:
    type: spark
    platform: emr
  ids-for-another:
    type: spark
    glue: {job_name: features}
  master-on-glue:
    type: spark
    platform: glue
    master: yarn
    glue: {job_name: features}
  both:
    type: ray
    address: local
    cluster: {image: rayproject/ray:2.60.0, workers: [{name: cpu, replicas: 2}]}
  neither:
    type: ray
steps:
  - name: a
    task: {backend: emr-missing-ids, command: [a.py]}
  - name: b
    task: {backend: ids-for-another, command: [b.py]}
  - name: c
    task: {backend: master-on-glue, command: [c.py]}
  - name: d
    task: {backend: both, command: [python, d.py]}
  - name: e
    task: {backend: neither, command: [python, e.py]}
"""


def test_platform_ids_and_ray_forms_are_checked() -> None:
    found = [(d.location.line, d.message) for d in check_source(Source("p.yaml", PLATFORMS)).diagnostics if d.location]
    assert found == [
        (5, "platform 'emr' needs a 'emr:' key with the ids it runs on"),
        (8, "'glue' is for platform glue; this backend's platform is 'submit'"),
        (11, "'master' is a spark-submit setting; platform 'glue' chooses its own"),
        (16, "a ray backend needs exactly one of 'address' (a running cluster) and 'cluster' (one made per run)"),
        (20, "a ray backend needs exactly one of 'address' (a running cluster) and 'cluster' (one made per run)"),
    ]


MANAGED = """\
pipegen: 1
name: managed
backends:
  operator:
    type: spark
    platform: kubernetes
    kubernetes:
      image: apache/spark:3.5.3
      spark_version: 3.5.3
  kuberay:
    type: ray
    cluster: {image: rayproject/ray:2.60.0, workers: [{name: cpu, replicas: 2, cpus: 2, memory: 4Gi}]}
steps:
  - name: features
    task: {backend: operator, command: [local:///opt/features.py]}
  - name: train
    after: [features]
    task: {backend: kuberay, command: [python, train.py]}
"""


def test_pipegen_run_refuses_managed_platforms_at_the_key_that_chooses_them() -> None:
    from pipegen.localrun.setup import RUNNABLE_VARIANTS, unsupported_backends
    from pipegen.resolve import resolve

    checked = check_source(Source("m.yaml", MANAGED))
    assert checked.diagnostics == []
    found = [(d.code, d.location.line if d.location else 0, d.message) for d in unsupported_backends(resolve(checked))]
    assert found == [
        (
            "PG602",
            6,
            "`pipegen run` cannot run step 'features' on a spark backend with platform: kubernetes "
            f"(backend 'operator'); it runs spark with {variants_text('spark', RUNNABLE_VARIANTS)}",
        ),
        (
            "PG602",
            12,
            "`pipegen run` cannot run step 'train' on a ray backend with cluster (a KubeRay RayJob per run) "
            "(backend 'kuberay'); it runs ray with address (a running Ray cluster)",
        ),
    ]
