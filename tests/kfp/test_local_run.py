"""The demo pipeline, compiled to KFP, runs with kfp.local (SubprocessRunner, offline) against a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow

from pipegen.targets.kfp.ir_share import shared_ir
from tests.cases import GOLDEN
from tests.kfp.test_compile import load


def test_the_demo_promotes_its_model(demo_workdir: Path) -> None:
    """The Python-function form, as KFP stores it, promotes the demo's model.

    Its run with failing thresholds (nothing promoted) is the differential suite's `fail_skip` scenario, which runs
    this same form in kfp.local; the container form's own test runs both.
    """
    from kfp import compiler, components, local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(demo_workdir / "kfp-root"))
    # Run the pipeline as KFP stores it: compiled to IR (as `pipegen compile --ir` writes it), then loaded back.
    ir = demo_workdir / "demo.yaml"
    compiler.Compiler().compile(load(GOLDEN / "kfp" / "demo.py").pipeline, package_path=str(ir))
    ir.write_text(shared_ir(ir.read_text()))
    pipeline = components.load_component_from_file(str(ir))

    pipeline()
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("pipegen-demo", "champion")
    # sqlite stores return versions as int, HTTP as str: compare as strings.
    assert str(version.version) == "1"
    assert version.tags["pipegen.target"] == "kfp"
    run = client.get_run(version.run_id)
    assert run.data.tags.get("pipegen.evaluation") == "passed"
