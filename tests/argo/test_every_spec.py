"""Issue 19's acceptance sweep: every spec the test suite has, compiled for Argo, validates against Argo 4's strict
API models and the lint; a spec Argo cannot run is a located PG6xx error, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipegen.compiler import compile_checked
from pipegen.frontend import Checked, check_file, check_source
from pipegen.loader import Source
from tests.argo.lint import lint_manifest
from tests.argo.strict import documents, validate_document
from tests.cases import REPO, UNSUPPORTED, rel
from tests.hostile import BACKEND_TYPES, VARIANTS, dump, hostile_spec

# Every spec file under specs/ and tests/ (tests/invalid's too: those `pipegen validate` accepts count).
SPEC_FILES = sorted({*(REPO / "specs").glob("*.yaml"), *(REPO / "tests").rglob("*.yaml")})
RUNTIME_IMAGE = "registry.example.com/pipegen-runtime:1"
# Backend variants Argo maps (resource templates, runtime containers); other spark backends and a Ray that
# `pipegen run` starts (address: local) are a located PG602.
MAPPED_VARIANTS = {"spark.kubernetes", "ray.cluster", "spark.submit", "ray.address"}
MAPPED_VARIANTS |= {f"spark.{p}" for p in ("emr", "emr_serverless", "emr_on_eks", "glue")}
LOCATED_PG6 = re.compile(r"^\S+:\d+:\d+: error\[PG6\d\d\]: .+; hint: .+$")


def _check(source_name: str, checked: Checked) -> str:
    """'compiled', 'refused' (located PG6xx) or 'invalid' (the spec itself is refused); asserts the manifest."""
    if not checked.ok:
        return "invalid"
    result = compile_checked(checked, ["argo"])
    if not result.ok:
        errors = [d.format() for d in result.diagnostics if d.severity.name == "ERROR"]
        assert errors and all(LOCATED_PG6.match(e) for e in errors), errors
        return "refused"
    [output] = [o for o in result.outputs if o.path.startswith("argo/")]
    docs = documents(output.text)
    assert [d["kind"] for d in docs][:1] == ["WorkflowTemplate"], source_name
    for doc in docs:
        validate_document(doc)
    assert lint_manifest(docs) == [], source_name
    return "compiled"


def test_the_sweep_finds_the_specs() -> None:
    names = {rel(p) for p in SPEC_FILES}
    assert {"specs/feed-ranking.yaml", "tests/differential/scenarios/gate_timeout.yaml"} <= names


def _with_runtime_image(spec: Path) -> Checked:
    """The spec with targets.argo.runtime_image set (the one option Argo needs that other targets lack)."""
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data.setdefault("targets", {}).setdefault("argo", {})["runtime_image"] = RUNTIME_IMAGE
    # YAML, not JSON: a `start:` date stays a date.
    return check_source(Source(rel(spec), yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1 << 16)))


@pytest.mark.parametrize("spec", SPEC_FILES, ids=rel)
def test_spec_compiles_to_a_valid_argo_manifest_or_is_located(spec: Path) -> None:
    outcome = _check(rel(spec), check_file(rel(spec)))
    if spec.parent.name in {"specs", "scenarios"}:
        # The examples and the differential scenarios are valid specs; Argo runs every example as it is.
        assert outcome != "invalid"
        if spec.parent == REPO / "specs":
            # Except those every target refuses for now (tests.cases.UNSUPPORTED: the multi-node example, PG602).
            if (spec.stem, "argo") in UNSUPPORTED:
                assert outcome == "refused"
                return
            assert outcome == "compiled"
    if outcome == "refused":
        # Most test specs name no Argo runtime image (PG604): given one, what they hold must compile and validate,
        # unless a step runs on a spark or ray backend Argo does not map (a located PG602, asserted by _check).
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
        backends = (data.get("backends") or {}).values()
        refused = any(_unmapped(b) for b in backends) or _distributed_unrunnable(data)
        expected = "refused" if refused else "compiled"
        assert _check(rel(spec), _with_runtime_image(spec)) == expected


def settle_keys(data: dict[str, Any], backend: str) -> None:
    """Plain text where the hostile filler put hostile mapping keys Argo refuses (test_argo_hostile locates those
    errors): Spark conf keys, and Ray's runtime_env (which KubeRay's submitter reads with bash)."""
    b = data["backends"]["b"]
    if backend == "spark.kubernetes":
        b["conf"] = dict.fromkeys(["spark.r"], *b["conf"].values())
    if backend == "ray.cluster":
        b["runtime_env"] = {"env_vars": {"R": "r"}}
    if backend == "spark.glue":
        # A Glue run takes only `--key value` arguments (cluster_jobs' Glue checks locate the rest): the hostile
        # words become the values.
        for key in ("driver", "executors", "conf", "packages"):
            b.pop(key, None)
        for step in data["steps"]:
            body = step.get("task") or step.get("train")
            if body is not None and body.get("backend") == "b":
                words = body["command"]
                body["command"] = [words[0], *(w for i, a in enumerate(words[1:]) for w in (f"--a{i}", a))]


def _distributed_unrunnable(data: dict[str, Any]) -> bool:
    """A multi-node step on a backend other than kubernetes, or as a TrainJob (Argo runs JobSets and Indexed Jobs
    only: PG602)."""
    backends = data.get("backends") or {}
    for step in data.get("steps") or []:
        body = step.get("train") or step.get("task") or {}
        backend = backends.get(body.get("backend")) or {}
        if body.get("distributed") and (
            backend.get("type") != "kubernetes" or backend.get("distributed_runtime") == "trainjob"
        ):
            return True
    return False


def _unmapped(backend: dict[str, object]) -> bool:
    """A spark backend on an AWS platform, or a ray backend whose Ray `pipegen run` starts."""
    if backend.get("type") == "spark":
        return f"spark.{backend.get('platform', 'submit')}" not in MAPPED_VARIANTS
    return backend.get("type") == "ray" and backend.get("address") == "local"


@pytest.mark.parametrize("backend", [*BACKEND_TYPES, *VARIANTS])
def test_hostile_spec_compiles_to_a_valid_argo_manifest_or_is_located(backend: str) -> None:
    data, _ = hostile_spec(backend, target="argo")
    if backend == "kubernetes":
        # A label key is a mapping key the hostile filler cannot settle (test_argo_hostile locates that error).
        data["backends"]["b"]["node_selector"] = {"pool": "r-1"}
    settle_keys(data, backend)
    outcome = _check(f"hostile-{backend}", check_source(Source("hostile.yaml", dump(data))))
    runs = {"kubernetes", "aws_batch", "sagemaker", "local", "spark", "ray", *MAPPED_VARIANTS}
    assert outcome == ("compiled" if backend in runs else "refused")
