"""Each container of a compiled manifest runs here with its exact argv and env against a real MLflow server:
the JSON the manifest carries reaches the runtime unchanged, hostile strings included (issue 19)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.argo.executor import Run, run_workflow
from tests.argo.lint import lint_manifest
from tests.argo.strict import documents, validate_document
from tests.conftest import CliResult
from tests.hostile import HOSTILE_LINE, literal_value
from tests.support_mlflow import MlflowServer

Cli = Callable[..., CliResult]

# Every character a runtime argument must keep, without '{{' only where Argo has no escape (a parameter default).
# $(MLFLOW_TRACKING_URI) is a variable of the runtime containers' env, which the kubelet would expand (issue 19).
NOTE = "q\"'\\ $${HOME} $(MLFLOW_TRACKING_URI) $(HOME) $$x ünï ✓ States.Format('{}') Ref::x"

TRAIN = """\
import json, os, pathlib, sys, tempfile
import mlflow
pathlib.Path(os.environ["ARGV_FILE"]).write_text(json.dumps(sys.argv[1:]))
c = mlflow.MlflowClient()
run = os.environ["MLFLOW_RUN_ID"]
c.log_metric(run, "m", 0.9)
d = pathlib.Path(tempfile.mkdtemp(), "model")
d.mkdir()
(d / "MLmodel").write_text("flavors: {}\\n")
c.log_artifacts(run, str(d), "model")
"""


def _spec(tmp_path: Path, model: str, gate_dir: Path, argv_file: Path) -> str:
    spec = {
        "pipegen": 1,
        "name": "hostile-run",
        "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Paris"},
        "params": {"note": NOTE, "n": 3},
        "mlflow": {"tracking_uri": "${env.MLFLOW_TRACKING_URI}", "experiment": "argo " + HOSTILE_LINE},
        "backends": {"here": {"type": "local", "env": {"ARGV_FILE": str(argv_file)}}},
        "steps": [
            {
                "name": "ready",
                "gate": {"check": "partition_exists", "path": "file://" + str(gate_dir).replace("${", "$${") + "/"},
            },
            {
                "name": "fit",
                "train": {
                    "backend": "here",
                    "command": ["python", "-c", TRAIN, HOSTILE_LINE, "${params.note}", "${params.n}", "${run.date}"],
                    "metrics": ["m"],
                },
            },
            {"name": "judge", "evaluate": {"run_of": "fit", "thresholds": ["m > 0.5"]}},
            {"name": "ship", "promote": {"run_of": "fit", "model": model, "artifact": "model", "alias": "champion"}},
        ],
        "targets": {
            "argo": {
                "runtime_image": "registry.example.com/ml/pipegen-runtime:0.1",
                "mlflow_config_map": {"name": "mlflow", "keys": ["MLFLOW_TRACKING_URI"]},
            }
        },
    }
    path = tmp_path / "hostile-run.yaml"
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_containers_run_the_pipeline_against_mlflow(cli: Cli, tmp_path: Path, mlflow_server: MlflowServer) -> None:
    import mlflow

    model = f"argo-{uuid.uuid4().hex[:8]}"
    # The gate's directory has the hostile text in its name ('$${' in the spec is a literal '${').
    gate_dir = tmp_path / "data" / literal_value(HOSTILE_LINE).replace("/", "_")
    gate_dir.mkdir(parents=True)
    (gate_dir / "part-0").write_text("x")
    argv_file = tmp_path / "argv.json"
    result = cli("compile", _spec(tmp_path, model, gate_dir, argv_file), "-t", "argo", "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err
    docs = documents((tmp_path / "out" / "argo" / "hostile-run.yaml").read_text(encoding="utf-8"))
    for doc in docs:
        validate_document(doc)
    assert lint_manifest(docs) == []

    template = docs[0]
    parameters = {p["name"]: p["value"] for p in template["spec"]["arguments"]["parameters"]}
    # A run the CronWorkflow started at 23:30 UTC: the next day in Paris.
    run = Run(
        parameters,
        config_maps={"mlflow": {"MLFLOW_TRACKING_URI": mlflow_server.uri}},
        scheduled_time="2026-03-07T23:30:00Z",
    )
    work = tmp_path / "work"
    work.mkdir()
    assert run_workflow(run, template, work) == "Succeeded", run.phases
    assert run.phases == {
        "pipegen-context": "Succeeded",
        "ready": "Succeeded",
        "pipegen-run-fit": "Succeeded",
        "fit": "Succeeded",
        "judge": "Succeeded",
        "ship": "Succeeded",
    }
    # The training command got every spec string verbatim (the spec's '$${' is a literal '${'), and the parameter's
    # value as it was given: a parameter is data, not a template, and neither Argo nor the kubelet rewrote it.
    assert json.loads(argv_file.read_text()) == [literal_value(HOSTILE_LINE), NOTE, "3", "2026-03-08"]

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    version = client.get_model_version_by_alias(model, "champion")
    mlflow_run = client.get_run(version.run_id)
    assert mlflow_run.data.tags["pipegen.target"] == "argo"
    assert mlflow_run.data.tags["pipegen.run_key"] == run.name
    # The experiment name is plain text, not a template: its `$${` stays as written.
    assert client.get_experiment(mlflow_run.info.experiment_id).name == "argo " + HOSTILE_LINE


def test_a_manual_submit_takes_today_in_the_schedules_timezone(tmp_path: Path) -> None:
    """Argo leaves {{workflow.scheduledTime}} as text outside CronWorkflow runs: the context reads it as now."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from pipegen.compiler import compile_checked
    from pipegen.frontend import check_file
    from tests.argo.executor import run_template

    result = compile_checked(check_file("specs/feed-ranking.yaml"), ["argo"])
    [doc, _cron] = documents(result.outputs[0].text)
    context = next(t for t in doc["spec"]["templates"] if t["name"] == "pipegen-context")
    run = Run({})
    before = datetime.now(UTC).astimezone(ZoneInfo("UTC")).date().isoformat()
    assert run_template(run, context, tmp_path) == 0
    after = datetime.now(UTC).astimezone(ZoneInfo("UTC")).date().isoformat()
    assert json.loads(run.results["pipegen-context"])["run_date"] in {before, after}
    assert "{{workflow.scheduledTime}}" in run.argv["pipegen-context"][4]


ARGV_SCRIPT = """\
import json, os, pathlib, sys
pathlib.Path(os.environ["ARGV_FILE"]).write_text(json.dumps(sys.argv[1:]))
"""


def test_a_spark_submit_step_runs_in_its_runtime_container(tmp_path: Path) -> None:
    """spark.submit on Argo: the runtime container runs real spark-submit (local[1], Java 17) with the step's argv as
    written, hostile text and the submitted parameter included (~15 s: the JVM)."""
    from pipegen.compiler import compile_checked
    from pipegen.frontend import check_source
    from pipegen.loader import Source

    script, argv_file = tmp_path / "app.py", tmp_path / "argv.json"
    script.write_text(ARGV_SCRIPT)
    spec = {
        "pipegen": 1,
        "name": "argo-spark",
        "params": {"note": NOTE},
        "backends": {"spark": {"type": "spark", "master": "local[1]", "conf": {"spark.ui.enabled": "false"}}},
        "steps": [
            {
                "name": "features",
                "task": {
                    "backend": "spark",
                    "command": [str(script), HOSTILE_LINE, "${params.note}", "${run.id}"],
                    "env": {"ARGV_FILE": str(argv_file)},
                },
            }
        ],
        "targets": {"argo": {"runtime_image": "registry.example.com/ml/pipegen-runtime:0.1"}},
    }
    result = compile_checked(check_source(Source("argo-spark.yaml", json.dumps(spec))), ["argo"])
    assert result.ok, [d.format() for d in result.diagnostics]
    docs = documents(result.outputs[0].text)
    for doc in docs:
        validate_document(doc)
    assert lint_manifest(docs) == []
    template = docs[0]
    run = Run({p["name"]: p["value"] for p in template["spec"]["arguments"]["parameters"]})
    work = tmp_path / "work"
    work.mkdir()
    assert run_workflow(run, template, work) == "Succeeded", (run.phases, run.logs)
    assert json.loads(argv_file.read_text()) == [literal_value(HOSTILE_LINE), NOTE, run.name]
