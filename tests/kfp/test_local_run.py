"""The demo pipeline, compiled to KFP, runs with kfp.local (SubprocessRunner, offline) against a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow

from pipegen.targets.kfp.ir_share import shared_ir
from tests.cases import GOLDEN
from tests.kfp.test_compile import load


def test_demo_promotes_then_failing_thresholds_promote_nothing(demo_workdir: Path) -> None:
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
    assert str(version.version) == "1"
    assert version.tags["pipegen.target"] == "kfp"

    pipeline(alpha=100000.0)
    # sqlite stores return versions as int, HTTP as str: compare as strings.
    assert [str(v.version) for v in client.search_model_versions("name = 'pipegen-demo'")] == ["1"]
    assert str(client.get_model_version_by_alias("pipegen-demo", "champion").version) == "1"
    runs = client.search_runs([version.run_id and client.get_run(version.run_id).info.experiment_id])
    assert {r.data.tags.get("pipegen.evaluation") for r in runs} == {"passed", "failed"}
