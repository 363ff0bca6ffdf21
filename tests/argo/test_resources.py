"""Spark and Ray steps on Argo: resource templates whose manifests, once Argo has substituted them, are objects their
APIs accept (strict models / CRD schema) holding the spec's text and the submitted values exactly as written, after
the kubelet's `$(VAR)` too; hostile keys Argo cannot pass are located errors; unmapped variants are a PG602 naming
what Argo runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.argo.executor import kubelet
from tests.argo.expressions import substitute
from tests.argo.lint import lint_manifest
from tests.argo.strict import documents, validate_document
from tests.hostile import HOSTILE_TEXT, dump, hostile_spec, literal_value
from tests.k8s.strict import validate

# Everything hostile but '{{', which Argo cannot be kept from reading (checks refuse it, tested below).
TEXT = HOSTILE_TEXT.replace("{{", "{ {") + " `id` }} $(RAY_JOB_SUBMISSION_ID) $$(HOME)"
SUBMITTED = 's\' "q" $(HOME) `id` {{workflow.name}} }}\nx\\y ✓'
POD_ENV = {"HOME": "/home/spark", "RAY_JOB_SUBMISSION_ID": "job-1"}
LOCATED = re.compile(r"^\S+:\d+:\d+: error\[PG602\]: .+; hint: .+$")


def _spec() -> str:
    t = json.dumps(TEXT, ensure_ascii=False)
    return f"""\
pipegen: 1
name: objects
params: {{p: {t}}}
mlflow: {{tracking_uri: {json.dumps("http://mlflow/" + TEXT.replace(chr(10), " "), ensure_ascii=False)}}}
backends:
  spark:
    type: spark
    platform: kubernetes
    kubernetes: {{image: "spark:4.0.1", spark_version: 4.0.1}}
    conf: {{spark.app.note: {t}}}
  ray:
    type: ray
    cluster: {{image: "rayproject/ray:2.60.0", workers: [{{name: cpu}}]}}
targets:
  argo: {{runtime_image: "runtime:1"}}
steps:
  - name: features
    task:
      backend: spark
      command: [app.py, {t}, "${{params.p}}", "d=${{run.date}} ${{params.p}}!"]
      env: {{NOTE: {t}, P: "${{params.p}}"}}
  - name: fit
    train:
      backend: ray
      command: [python, {t}, "${{params.p}}", "${{run.id}}"]
      env: {{NOTE: {t}}}
"""


def _objects(text: str) -> dict[str, dict[str, Any]]:
    result = compile_checked(check_source(Source("objects.yaml", text)), ["argo"])
    assert result.ok, [d.format() for d in result.diagnostics]
    docs = documents(result.outputs[0].text)
    for doc in docs:
        validate_document(doc)
    assert lint_manifest(docs) == []
    out = {}
    for template in docs[0]["spec"]["templates"]:
        if "resource" in template:
            inputs = {"run-date": "2026-03-08", "mlflow-experiment-id": "7", "mlflow-run-id": "abc"}
            scope = {
                "workflow.parameters": {"p": SUBMITTED},
                "workflow.name": "objects-x1",
                "inputs.parameters": inputs,
            }
            obj = json.loads(substitute(template["resource"]["manifest"], scope))
            validate(obj)
            out[template["name"]] = obj
    return out


def test_spec_text_and_submitted_values_reach_the_objects_as_written() -> None:
    objects = _objects(_spec())
    text = literal_value(TEXT)
    app = objects["features"]["spec"]
    assert [kubelet(a, POD_ENV) for a in app["arguments"]] == [text, SUBMITTED, f"d=2026-03-08 {SUBMITTED}!"]
    assert app["sparkConf"] == {"spark.app.note": text}
    env = {e["name"]: kubelet(e["value"], POD_ENV) for e in app["driver"]["env"]}
    assert env == {"NOTE": text, "P": SUBMITTED}
    job = objects["fit"]["spec"]
    # The entrypoint as bash reads it after the kubelet (tests/k8s/test_ray_entrypoint.py runs it through Ray).
    import shlex

    assert shlex.split(kubelet(job["entrypoint"], POD_ENV)) == ["python", text, SUBMITTED, "objects-x1"]
    [head] = job["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]
    env = {e["name"]: kubelet(e["value"], POD_ENV) for e in head["env"]}
    assert env == {
        "MLFLOW_EXPERIMENT_ID": "7",
        "MLFLOW_RUN_ID": "abc",
        "MLFLOW_TRACKING_URI": "http://mlflow/" + text.replace("\n", " "),
        "NOTE": text,
    }


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("spark.app.note: ", '"spark.app.{{x}}": ', "conf.spark.app.{{x}}"),
        ("kubernetes: {image: ", "kubernetes: {namespace: x, image: ", "namespace 'x'"),
        ("workers: [{name: cpu}]", "workers: [{name: cpu, gpus: 0.5}]", "Kubernetes assigns whole GPUs"),
        ("workers: [{name: cpu}]}", "workers: [{name: cpu}]}\n    runtime_env: {env_vars: {A: $HOME}}", "bash"),
        ("app.py, ", 'app.py, "${env.HOME}", ', "cannot put ${env.HOME} in the command"),
        ('"spark:4.0.1"', '"spark:{{x}}"', "kubernetes.image of backend 'spark'"),
    ],
)
def test_what_argo_cannot_pass_is_a_located_error(old: str, new: str, message: str) -> None:
    text = _spec()
    assert old in text
    result = compile_checked(check_source(Source("objects.yaml", text.replace(old, new, 1))), ["argo"])
    errors = [d.format() for d in result.diagnostics if d.severity.name == "ERROR"]
    assert errors and all(LOCATED.match(e) for e in errors), errors
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize("variant", ["spark.kubernetes", "ray.cluster"])
def test_hostile_keys_are_located_and_the_rest_compiles(variant: str, tmp_path: Path) -> None:
    data, _ = hostile_spec(variant, target="argo")
    result = compile_checked(check_source(Source("hostile.yaml", dump(data))), ["argo"])
    errors = [d.format() for d in result.diagnostics if d.severity.name == "ERROR"]
    assert errors and all(LOCATED.match(e) for e in errors), errors
    assert any(("conf." if variant.startswith("spark") else "runtime_env") in e for e in errors), errors


@pytest.mark.parametrize(
    ("backend", "hint"),
    [
        (
            "{type: spark, platform: glue, conf: {spark.x: y}, glue: {job_name: j}}",
            "set it on the Glue job itself",
        ),
        ("{type: ray, address: local}", "set address to a running cluster's job server"),
    ],
)
def test_unmapped_variants_are_a_located_pg602_naming_what_argo_runs(backend: str, hint: str) -> None:
    text = f"""\
pipegen: 1
name: unmapped
backends:
  b: {backend}
targets:
  argo: {{runtime_image: "runtime:1"}}
steps:
  - name: s
    task: {{backend: b, command: [app.py]}}
"""
    result = compile_checked(check_source(Source("unmapped.yaml", text)), ["argo"])
    [error] = [d for d in result.diagnostics if d.severity.name == "ERROR"]
    assert error.code == "PG602" and error.location is not None and error.location.line == 4
    assert error.hint is not None and error.hint.startswith(hint), error.hint


def test_the_header_names_the_rules_the_service_account_needs_only_when_objects_are_created() -> None:
    from tests.cases import GOLDEN

    rules = "{apiGroups: [ray.io], resources: [rayjobs], verbs: [create, get, patch]}"
    assert rules in (GOLDEN / "argo" / "clickstream.yaml").read_text()
    assert "sparkapplications" in (GOLDEN / "argo" / "clickstream.yaml").read_text()
    assert "rayjobs" not in (GOLDEN / "argo" / "feed-ranking.yaml").read_text()
    # A multi-node step's objects: a Job and its headless Service.
    assert "{apiGroups: [batch], resources: [jobs]" in (GOLDEN / "argo" / "feed-ranking-16gpu.yaml").read_text()


def test_the_header_names_what_the_runtime_image_needs_for_spark_submit_and_ray_steps() -> None:
    from tests.cases import GOLDEN

    needs = "# Its runtime image also needs Java 17 and pipegen-ml[spark] (spark-submit) and pipegen-ml[ray]"
    assert needs in (GOLDEN / "argo" / "sparkray.yaml").read_text()
    assert "Its runtime image also needs" not in (GOLDEN / "argo" / "clickstream.yaml").read_text()
    # Spark on AWS platforms: boto3, no Java.
    assert (
        "# Its runtime image also needs pipegen-ml[aws] (Spark jobs on AWS).\n"
        in (GOLDEN / "argo" / "clicks.yaml").read_text()
    )
