"""The compile plumbing, through a small real target registered the way plugins register."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from pipegen.emit import Output
from pipegen.resolve import Pipeline
from pipegen.targets import available, register, unregister
from pipegen.targets.base import Support, Target
from tests.cases import REPO, SPECS, rel
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


class ManifestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    indent: int = Field(2, description="Spaces per level of the manifest's JSON.")


class ManifestTarget(Target):
    """Writes a JSON manifest of the resolved pipeline; supports only some backends, to exercise the checks."""

    name = "manifest"
    title = "JSON manifest"
    support = Support(
        backends={"kubernetes": "pod", "local": "subprocess"},
        gates={"row_count": "query", "partition_exists": "listing"},
    )
    options_model = ManifestOptions

    def render(self, pipeline: Pipeline, options: BaseModel) -> list[Output]:
        assert isinstance(options, ManifestOptions)
        doc = {
            "name": pipeline.name,
            "spec": pipeline.spec_path,
            "sha256": pipeline.spec_sha256,
            "steps": [
                {"name": s.name, "kind": s.kind, "after": list(s.upstream), "retries": s.policy.retries}
                for s in pipeline.steps
            ],
        }
        return [Output(f"manifest/{pipeline.name}.json", json.dumps(doc, indent=options.indent) + "\n")]


@pytest.fixture(autouse=True)
def manifest_target() -> Iterator[None]:
    register(ManifestTarget())
    yield
    unregister("manifest")


def supported_specs() -> list[str]:
    # The manifest target runs kubernetes and local steps only: not pricing (Batch), clicks (Spark on AWS) or
    # spark-ray-k8s (Spark Operator, KubeRay); feed-ranking-16gpu is multi-node, which no target runs yet.
    return [rel(p) for p in SPECS if p.stem not in ("pricing", "clicks", "spark-ray-k8s", "feed-ranking-16gpu")]


def test_registered_target_is_listed(cli: Cli) -> None:
    assert "manifest" in available()
    result = cli("targets")
    assert "manifest: JSON manifest" in result.out
    assert "kubernetes  pod" in result.out


def test_registered_target_options_are_in_the_schema() -> None:
    """The schema's `targets:` comes from the registry, so a plugin's options are completed and checked too."""
    import jsonschema

    from pipegen.schema import json_schema

    schema = json_schema()
    defs: dict[str, Any] = schema["$defs"]  # type: ignore[assignment]
    section = defs["Targets"]
    assert set(section["properties"]) == set(available()) and section["additionalProperties"] is False
    ref = section["properties"]["manifest"]["$ref"].rsplit("/", 1)[-1]
    assert defs[ref]["properties"]["indent"] == {
        "default": 2,
        "description": "Spaces per level of the manifest's JSON.",
        "title": "Indent",
        "type": "integer",
    }
    validator = jsonschema.Draft202012Validator(schema)
    base = {"pipegen": 1, "name": "x", "steps": [{"name": "a", "task": {"command": ["x"]}}]}
    assert validator.is_valid({**base, "targets": {"manifest": {"indent": 4}}})
    for bad in ({"manifest": {"indnt": 4}}, {"manifest": {"indent": "4"}}, {"manifst": {}}):
        assert not validator.is_valid({**base, "targets": bad}), bad


def test_registered_target_options_are_listed(cli: Cli) -> None:
    result = cli("targets")
    assert "  options (targets: {manifest: {...}}):\n    indent  integer, default 2\n" in result.out
    assert "            Spaces per level of the manifest's JSON.\n" in result.out
    doc = json.loads(cli("targets", "--format", "json").out)
    assert doc["manifest"]["options"] == {
        "indent": {
            "type": "integer",
            "required": False,
            "default": 2,
            "description": "Spaces per level of the manifest's JSON.",
        }
    }
    markdown = cli("targets", "--format", "markdown").out
    assert "| `indent` | integer | `2` | Spaces per level of the manifest's JSON. |" in markdown


def test_compile_writes_outputs(cli: Cli, tmp_path: Path) -> None:
    result = cli("compile", *supported_specs(), "-t", "manifest", "-o", str(tmp_path))
    assert result.code == 0, result.err
    doc = json.loads((tmp_path / "manifest" / "feed-ranking.json").read_text())
    assert doc["spec"] == "specs/feed-ranking.yaml"
    assert [s["name"] for s in doc["steps"]] == ["engagement_ready", "train", "quality", "promote"]
    # defaults apply: feed-ranking sets retries: 3 for every step.
    assert {s["retries"] for s in doc["steps"]} == {3}
    assert sorted(p.name for p in (tmp_path / "manifest").iterdir()) == ["demo.json", "feed-ranking.json"]


def test_written_files_get_the_usual_mode(cli: Cli, tmp_path: Path) -> None:
    """Outputs are readable like any new file (the DAG processor may run as another user), not 0600."""
    old = os.umask(0o022)
    try:
        result = cli("compile", *supported_specs(), "-t", "manifest", "-o", str(tmp_path))
    finally:
        os.umask(old)
    assert result.code == 0, result.err
    assert stat.S_IMODE((tmp_path / "manifest" / "demo.json").stat().st_mode) == 0o644


def test_check_reports_stale_outputs(cli: Cli, tmp_path: Path) -> None:
    args = ("compile", "specs/demo.yaml", "-t", "manifest", "-o", str(tmp_path))
    missing = cli(*args, "--check")
    assert missing.code == 1
    assert "+++ " in missing.out
    assert not (tmp_path / "manifest").exists(), "--check must write nothing"
    assert cli(*args).code == 0
    fresh = cli(*args, "--check")
    assert (fresh.code, fresh.out) == (0, "")
    out = tmp_path / "manifest" / "demo.json"
    out.write_text(out.read_text().replace('"demo"', '"old"'))
    stale = cli(*args, "--check")
    assert stale.code == 1
    assert '-  "name": "old",' in stale.out and '+  "name": "demo",' in stale.out
    assert '"old"' in out.read_text(), "--check must not rewrite"


def test_unsupported_backend_is_located_and_nothing_is_written(cli: Cli, tmp_path: Path) -> None:
    # pricing trains on aws_batch, which this target does not support: no file for any spec is written.
    result = cli("compile", *supported_specs(), "specs/pricing.yaml", "-t", "manifest", "-o", str(tmp_path))
    assert result.code == 1
    assert "specs/pricing.yaml:" in result.err
    assert "error[PG602]: target 'manifest' cannot run step 'train' on backend type 'aws_batch'" in result.err
    assert "hint: JSON manifest supports backend types: kubernetes, local" in result.err
    # Located at the step's backend reference.
    assert "specs/pricing.yaml:41:16: error[PG602]" in result.err
    assert not tmp_path.joinpath("manifest").exists()


def test_spec_error_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "specs" / "demo.yaml").read_text().replace("thresholds:", "threshold:"))
    result = cli("compile", "specs/feed-ranking.yaml", str(bad), "-t", "manifest", "-o", str(tmp_path / "out"))
    assert result.code == 1
    assert "error[PG200]: unknown key 'threshold'" in result.err
    assert not (tmp_path / "out").exists()


def test_target_options_are_validated(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "opts.yaml"
    # demo.yaml ends with its own targets block; these cases bring theirs.
    base = (REPO / "specs" / "demo.yaml").read_text().split("\ntargets:")[0] + "\n"
    spec.write_text(base + "targets:\n  manifest: {indent: 4, colour: red}\n  manifset: {}\n")
    result = cli("validate", str(spec))
    assert result.code == 1
    lines = result.out.splitlines()
    assert any("error[PG200]: unknown key 'colour' in targets.manifest" in line for line in lines)
    assert any("error[PG603]: unknown target 'manifset' (did you mean 'manifest'?)" in line for line in lines)
    spec.write_text(base + "targets:\n  manifest: {indent: 4}\n")
    assert cli("compile", str(spec), "-t", "manifest", "-o", str(tmp_path / "o")).code == 0
    assert (tmp_path / "o" / "manifest" / "demo.json").read_text().startswith('{\n    "name"')


def test_compile_is_deterministic(cli: Cli, tmp_path: Path) -> None:
    for out in ("a", "b"):
        # demo trains on the local backend, which Step Functions cannot run.
        assert cli("compile", *supported_specs(), "-t", "airflow,kfp,manifest", "-o", str(tmp_path / out)).code == 0
    a = sorted((tmp_path / "a").rglob("*"))
    assert [p.relative_to(tmp_path / "a") for p in a] == [
        p.relative_to(tmp_path / "b") for p in sorted((tmp_path / "b").rglob("*"))
    ]
    for path in a:
        if path.is_file():
            assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()
