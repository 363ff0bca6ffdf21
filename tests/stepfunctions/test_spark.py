"""Spark steps on Step Functions: Glue runs for real in moto's executor (the only one of the four integrations it
runs), every platform's states pass asl-validator in both query languages, and what Step Functions cannot run is a
located diagnostic (spark-submit and Spark Operator platforms, Ray, what Glue cannot take, secrets)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipegen.runtime.spark_aws import spark_request
from tests.hostile import HOSTILE, literal_value
from tests.stepfunctions.asl import compile_text, load, validate
from tests.stepfunctions.support import fix_glue_sync, history, run_state_machine
from tests.support_mlflow import MlflowServer, play_training

# ---- Glue, executed -----------------------------------------------------------------------------------------

# What a played Glue run does: gets the job name and the run's arguments; returns the run's end state.
GluePlayer = Callable[[str, dict[str, str]], str]


def play_glue_runs(monkeypatch: pytest.MonkeyPatch, player: GluePlayer) -> list[dict[str, Any]]:
    """Record each StartJobRun moto's Glue receives, run player on it, and end the run in the state it returns.

    moto's runs go STARTING -> RUNNING -> SUCCEEDED; a run the player fails gets RUNNING -> FAILED instead (moto
    internals: moto is pinned).
    """
    from moto.glue.models import FakeJob

    fix_glue_sync(monkeypatch)
    original = FakeJob.start_job_run
    started: list[dict[str, Any]] = []

    def start_job_run(self: Any, **kwargs: Any) -> str:
        arguments = dict(kwargs.get("arguments") or {})
        started.append({"job": self.name, "arguments": arguments, "timeout": kwargs.get("timeout")})
        end = player(self.name, arguments)
        run_id = original(self, **kwargs)
        if end != "SUCCEEDED":
            (run,) = [r for r in self.job_runs if r.job_run_id == run_id]
            run._transitions = [("STARTING", "RUNNING"), ("RUNNING", end)]
        return str(run_id)

    monkeypatch.setattr(FakeJob, "start_job_run", start_job_run)
    return started


def _glue_job(name: str) -> None:
    boto3.client("glue").create_job(
        Name=name,
        Role="arn:aws:iam::123456789012:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": "s3://code/job.py", "PythonVersion": "3"},
    )


def _explain(result: dict[str, Any]) -> str:
    failed = [e for e in history(result["executionArn"]) if "Failed" in e["type"]]
    return f"{result['status']}: {result.get('error')} {result.get('cause')}\n{json.dumps(failed, default=str)[:3000]}"


def _definition(text: str, tmp_path: Path, name: str) -> str:
    outputs, diags = compile_text(text, tmp_path, f"{name}.yaml")
    assert outputs, diags
    path = tmp_path / f"{name}.asl.json"
    path.write_text(outputs[f"stepfunctions/{name}.asl.json"], encoding="utf-8")
    checked = validate(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return path.read_text(encoding="utf-8")


GLUE_PIPELINE = """\
pipegen: 1
name: gluey
params: {{days: 7}}
defaults: {{retries: 0, timeout: 10m}}
mlflow: {{tracking_uri: "${{env.MLFLOW_TRACKING_URI}}", experiment: {name}}}
backends:
  glue:
    type: spark
    platform: glue
    glue: {{job_name: {name}}}
steps:
  - name: export
    task:
      backend: glue
      command: [s3://code/job.py, --note, {hostile}, --lookalike, "$.pipegen.run_id", --intrinsic, "States.Format('{{}}', $.x)"]
  - name: fit
    train:
      backend: glue
      command: [s3://code/job.py, --days, "${{params.days}}", --date, "${{run.date}}"]
      env: {{NOTE: {hostile}}}
      metrics: [auc]
  - name: judge
    evaluate: {{run_of: fit, thresholds: ["auc > 0.5"]}}
  - name: ship
    promote: {{model: {name}, run_of: fit}}
"""


def test_glue_runs_get_their_arguments_and_a_train_run_logs_into_mlflow(
    sfn: list[dict[str, Any]], mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    _glue_job(name)

    def play(job: str, arguments: dict[str, str]) -> str:
        if "--MLFLOW_RUN_ID" in arguments:  # the training run: what the job's script does with its arguments
            play_training(arguments["--MLFLOW_TRACKING_URI"], arguments["--MLFLOW_RUN_ID"], {"auc": 0.81})
        return "SUCCEEDED"

    started = play_glue_runs(monkeypatch, play)
    text = GLUE_PIPELINE.format(name=name, hostile=json.dumps(HOSTILE, ensure_ascii=False))
    definition = _definition(text, tmp_path, "gluey")
    states = json.loads(definition)["States"]
    # A step with literal values only needs no Lambda: its Arguments are in the definition.
    assert states["export"]["Resource"] == "arn:aws:states:::glue:startJobRun.sync"
    assert states["fit"]["Resource"] == "arn:aws:states:::lambda:invoke"
    result = run_state_machine(definition, name, {})
    assert result["status"] == "SUCCEEDED", (started, _explain(result))

    export, fit = started
    # Hostile text and text that looks like a path or an intrinsic arrive as written; Timeout is in minutes.
    assert export == {
        "job": name,
        "arguments": {
            "--intrinsic": "States.Format('{}', $.x)",
            "--lookalike": "$.pipegen.run_id",
            "--note": literal_value(HOSTILE),
        },
        "timeout": 10,
    }
    today = datetime.now(UTC).date().isoformat()
    run_id = fit["arguments"]["--MLFLOW_RUN_ID"]
    assert fit["arguments"] == {
        "--date": today,
        "--days": "7",
        "--NOTE": literal_value(HOSTILE),
        "--MLFLOW_EXPERIMENT_ID": fit["arguments"]["--MLFLOW_EXPERIMENT_ID"],
        "--MLFLOW_RUN_ID": run_id,
        "--MLFLOW_TRACKING_URI": mlflow_server.uri,
    }
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    run = client.get_run(run_id)
    assert run.data.tags["pipegen.target"] == "stepfunctions"
    assert run.info.experiment_id == fit["arguments"]["--MLFLOW_EXPERIMENT_ID"]
    assert client.get_model_version_by_alias(name, "champion").run_id == run_id
    assert [e["args"]["kind"] for e in sfn] == ["prepare", "close_run", "evaluate", "promote"]


def test_a_failed_glue_run_fails_its_step_after_its_retries(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    _glue_job(name)
    started = play_glue_runs(monkeypatch, lambda job, arguments: "FAILED")
    text = (
        "pipegen: 1\nname: gluefail\n"
        f"backends:\n  glue: {{type: spark, platform: glue, glue: {{job_name: {name}}}}}\n"
        "steps:\n  - name: export\n    retries: 1\n    retry_delay: 1s\n"
        "    task: {backend: glue, command: [s3://code/job.py, --day, one]}\n"
        "  - name: after\n    task: {backend: glue, command: [s3://code/job.py, --day, two]}\n"
    )
    result = run_state_machine(_definition(text, tmp_path, "gluefail"), name, {}, timeout=180)
    assert result["status"] == "FAILED", _explain(result)
    assert result["error"] == "pipegen.PipelineFailed"
    # The job run's own record is the run's cause: its state and arguments (States.TaskFailed, in the history).
    cause = json.loads(result["cause"])
    assert (cause["JobRunState"], cause["Arguments"]) == ("FAILED", {"--day": "one"})
    failed = [e for e in history(result["executionArn"]) if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["States.TaskFailed"] * 2
    # Retried once (a new run), then the run failed: the next step never started.
    assert [s["arguments"] for s in started] == [{"--day": "one"}, {"--day": "one"}]


# ---- every platform: the request, valid for asl-validator in both languages ----------------------------------

PLATFORMS = """\
pipegen: 1
name: plats
params: {p: 3}
mlflow: {experiment: plats}
backends:
  emr:
    type: spark
    platform: emr
    emr: {cluster_id: j-ABC123}
    conf: {spark.sql.shuffle.partitions: "8"}
    driver: {cores: 2, memory: 4g}
    executors: {instances: 3, cores: 2, memory: 8g}
    main_class: com.example.Main
    py_files: [s3://code/lib.zip]
    jars: [s3://code/a.jar]
    packages: ["org.example:lib:1.0"]
  serverless:
    type: spark
    platform: emr_serverless
    emr_serverless: {application_id: 00abc, execution_role_arn: "arn:aws:iam::123456789012:role/run"}
    conf: {spark.sql.shuffle.partitions: "8"}
    driver: {cores: 2, memory: 4g}
    main_class: com.example.Main
    py_files: [s3://code/lib.zip, s3://code/more.zip]
  eks:
    type: spark
    platform: emr_on_eks
    emr_on_eks:
      virtual_cluster_id: vc123
      execution_role_arn: "arn:aws:iam::123456789012:role/run"
      release_label: emr-7.1.0-latest
    executors: {instances: 2}
  glue:
    type: spark
    platform: glue
    glue: {job_name: export job}
    py_files: [s3://code/lib.zip]
steps:
  - name: a
    task: {backend: emr, command: [s3://code/a.py, x, "y z"], env: {A: "1"}}
  - name: b
    train: {backend: serverless, command: [s3://code/b.py, "--p", "${params.p}"], env: {B: "2"}}
  - name: c
    task: {backend: eks, command: [s3://code/c.py]}
  - name: d
    task: {backend: glue, command: [s3://code/d.py, --out, s3://out/], env: {D: "4"}}
"""


def _plats(tmp_path: Path, language: str) -> dict[str, Any]:
    text = PLATFORMS + f"targets: {{stepfunctions: {{query_language: {language}}}}}\n"
    return dict(json.loads(_definition(text, tmp_path, "plats"))["States"])


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_every_platform_is_valid_asl(tmp_path: Path, language: str) -> None:
    states = _plats(tmp_path, language)
    resources = {states[s]["Resource"] for s in ("a", "b.job", "c", "d")}
    assert resources == {
        "arn:aws:states:::elasticmapreduce:addStep.sync",
        "arn:aws:states:::emr-serverless:startJobRun.sync",
        "arn:aws:states:::emr-containers:startJobRun.sync",
        "arn:aws:states:::glue:startJobRun.sync",
    }


def test_literal_requests_are_in_the_definition(tmp_path: Path) -> None:
    states = _plats(tmp_path, "JSONPath")
    emr = states["a"]["Parameters"]
    assert emr["ClusterId"] == "j-ABC123"
    assert emr["Step"]["Name"] == "plats-a" and emr["Step"]["ActionOnFailure"] == "CONTINUE"
    assert emr["Step"]["HadoopJarStep"] == {
        "Jar": "command-runner.jar",
        "Args": [
            "spark-submit",
            "--master",
            "yarn",
            "--deploy-mode",
            "cluster",
            "--conf",
            "spark.sql.shuffle.partitions=8",
            "--conf",
            "spark.yarn.appMasterEnv.A=1",
            "--driver-cores",
            "2",
            "--driver-memory",
            "4g",
            "--num-executors",
            "3",
            "--executor-cores",
            "2",
            "--executor-memory",
            "8g",
            "--class",
            "com.example.Main",
            "--py-files",
            "s3://code/lib.zip",
            "--jars",
            "s3://code/a.jar",
            "--packages",
            "org.example:lib:1.0",
            "s3://code/a.py",
            "x",
            "y z",
        ],
    }
    eks = states["c"]["Parameters"]
    assert eks["JobDriver"] == {"SparkSubmitJobDriver": {"EntryPoint": "s3://code/c.py"}}
    assert eks["ConfigurationOverrides"]["ApplicationConfiguration"] == [
        {"Classification": "spark-defaults", "Properties": {"spark.executor.instances": "2"}}
    ]
    assert (eks["Name"], eks["ReleaseLabel"], eks["VirtualClusterId"]) == ("plats-c", "emr-7.1.0-latest", "vc123")
    glue = states["d"]["Parameters"]
    assert glue == {
        "JobName": "export job",
        "Arguments": {"--D": "4", "--extra-py-files": "s3://code/lib.zip", "--out": "s3://out/"},
    }
    assert "TimeoutSeconds" not in states["d"]


def test_a_train_step_reads_every_field_its_prepare_state_renders(tmp_path: Path) -> None:
    """The Task reads exactly the fields runtime.spark_aws returns for the step with its MLflow run."""
    states = _plats(tmp_path, "JSONPath")
    prepare = json.loads(states["b"]["Parameters"]["Payload"]["args"]["spec_json"])
    assert prepare["service"] == "spark" and prepare["platform"] == "emr_serverless"
    run_env = {"MLFLOW_EXPERIMENT_ID": "1", "MLFLOW_RUN_ID": "r", "MLFLOW_TRACKING_URI": "http://m"}
    body = spark_request("emr_serverless", prepare["spark"], ["s3://code/b.py", "--p", "3"], {"B": "2", **run_env})
    params = states["b.job"]["Parameters"]
    read = {
        **{k[:-2]: v for k, v in params["JobDriver"]["SparkSubmit"].items()},
        **{
            k[:-2]: v
            for k, v in params["ConfigurationOverrides"]["ApplicationConfiguration"][0].items()
            if k.endswith(".$")
        },
    }
    assert read == {key: f"$.prepared.b.job.{key}" for key in body}
    # The driver gets the run through EMR Serverless' driver environment; settings are properties, not text.
    assert body["Properties"]["spark.emr-serverless.driverEnv.MLFLOW_RUN_ID"] == "r"
    assert body["Properties"]["spark.submit.pyFiles"] == "s3://code/lib.zip,s3://code/more.zip"
    assert body["SparkSubmitParameters"] == "--class com.example.Main"
    assert params["Name"] == "plats-b" and params["ApplicationId"] == "00abc"


def test_env_reaches_the_driver_on_each_platform() -> None:
    env = {"MLFLOW_RUN_ID": "r"}
    argv = spark_request("emr", {}, ["app.py"], env)["Args"]
    assert argv[argv.index("--conf") + 1] == "spark.yarn.appMasterEnv.MLFLOW_RUN_ID=r"
    eks = spark_request("emr_on_eks", {}, ["app.py"], env)
    assert eks == {"EntryPoint": "app.py", "Properties": {"spark.kubernetes.driverEnv.MLFLOW_RUN_ID": "r"}}
    assert spark_request("glue", {}, ["app.py", "--a", "b"], env) == {"Arguments": {"--MLFLOW_RUN_ID": "r", "--a": "b"}}


# ---- what Step Functions refuses ---------------------------------------------------------------------------


def _diagnostics(text: str, tmp_path: Path) -> list[str]:
    _, diags = compile_text(text, tmp_path, "x.yaml")
    return [d.replace(str(tmp_path) + "/", "") for d in diags]


def _one_step(backend: str, command: str = "[s3://code/app.py]", extra: str = "") -> str:
    return f"pipegen: 1\nname: x\nbackends:\n  b:\n{backend}steps:\n  - name: s\n{extra}    task: {{backend: b, command: {command}}}\n"


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        (
            "    type: spark\n    master: yarn\n",
            "x.yaml:5:5: error[PG602]: target 'stepfunctions' cannot run step 's' on a spark backend with platform:"
            " submit (backend 'b'); hint: AWS Step Functions runs spark with platform: emr, emr_serverless, emr_on_eks, glue",
        ),
        (
            "    type: spark\n    platform: kubernetes\n    kubernetes: {image: spark:4, spark_version: 4.0.1}\n",
            "x.yaml:6:5: error[PG602]: target 'stepfunctions' cannot run step 's' on a spark backend with platform:"
            " kubernetes (backend 'b'); hint: AWS Step Functions runs spark with platform: emr, emr_serverless, emr_on_eks, glue",
        ),
    ],
    ids=["submit", "kubernetes"],
)
def test_spark_submit_and_spark_operator_are_refused_at_the_platform(
    tmp_path: Path, backend: str, expected: str
) -> None:
    assert _diagnostics(_one_step(backend), tmp_path) == [expected]


@pytest.mark.parametrize(
    "backend",
    [
        "    type: ray\n    address: http://head:8265\n",
        "    type: ray\n    cluster: {image: rayproject/ray:2.60.0, workers: [{name: cpu}]}\n",
    ],
    ids=["address", "cluster"],
)
def test_ray_is_refused_with_the_way_to_run_it(tmp_path: Path, backend: str) -> None:
    (diagnostic,) = _diagnostics(_one_step(backend, "[python, app.py]"), tmp_path)
    assert diagnostic.startswith(
        "x.yaml:9:21: error[PG602]: target 'stepfunctions' cannot run step 's' on backend type 'ray' (backend 'b');"
        " hint: AWS Step Functions supports backend types: aws_batch, sagemaker, kubernetes, spark; Step Functions"
        " has no Ray integration: submit the Ray job from a Batch job"
    ), diagnostic


GLUE = "    type: spark\n    platform: glue\n    glue: {job_name: j}\n"


@pytest.mark.parametrize(
    ("backend", "command", "expected"),
    [
        (
            GLUE,
            "[app.py, --a, '1', --b]",
            "x.yaml:10:52: error[PG602]: target 'stepfunctions' can pass Glue job arguments only as '--key value'"
            " pairs: '--b' has no value (step 's'); hint: write the application's arguments as --name value"
            " pairs (the script reads them with getResolvedOptions)",
        ),
        (
            GLUE,
            "[app.py, -a, '1']",
            "x.yaml:10:42: error[PG602]: target 'stepfunctions' can pass Glue job arguments only as '--key value'"
            " pairs: '-a' is not a --key (step 's'); hint: write the application's arguments as --name value pairs"
            " (the script reads them with getResolvedOptions)",
        ),
        (
            GLUE,
            "['${params.k}', '--${params.k}', v]",
            None,  # checked below: a key is a name, never a reference
        ),
        (
            GLUE + "    executors: {instances: 4}\n",
            "[app.py]",
            "x.yaml:8:5: error[PG602]: target 'stepfunctions' cannot pass 'executors' to Glue job 'j' of step 's';"
            " hint: Glue sizes a run by the job's WorkerType and NumberOfWorkers: set them on the job",
        ),
        (
            GLUE + "    conf: {spark.x: y}\n",
            "[app.py]",
            "x.yaml:8:5: error[PG602]: target 'stepfunctions' cannot pass 'conf' to Glue job 'j' of step 's'; hint:"
            " Glue reserves --conf: set Spark settings in the job's script or its default arguments",
        ),
        (
            GLUE + "    packages: ['a:b:1']\n",
            "[app.py]",
            "x.yaml:8:5: error[PG602]: target 'stepfunctions' cannot pass 'packages' to Glue job 'j' of step 's';"
            " hint: Glue takes no Maven packages per run: add the jars with `jars` (--extra-jars)",
        ),
        (
            GLUE + "    py_files: [s3://x.zip]\n",
            "[app.py, --extra-py-files, s3://y.zip]",
            "x.yaml:11:42: error[PG602]: target 'stepfunctions' passes py_files to Glue as argument"
            " '--extra-py-files' too (step 's'); hint: rename the argument",
        ),
    ],
    ids=["odd", "not-a-key", "reference-key", "executors", "conf", "packages", "collision"],
)
def test_what_glue_cannot_take_is_refused(tmp_path: Path, backend: str, command: str, expected: str | None) -> None:
    text = _one_step(backend, command)
    if "params" in command:
        text = text.replace("name: x\n", "name: x\nparams: {k: v}\n")
    found = _diagnostics(text, tmp_path)
    if expected is None:
        assert len(found) == 1 and "is not a --key" in found[0], found
    else:
        assert found == [expected]


def test_env_colliding_with_an_argument_on_glue_is_refused(tmp_path: Path) -> None:
    text = (
        f"pipegen: 1\nname: x\nbackends:\n  b:\n{GLUE}steps:\n  - name: s\n"
        "    train: {backend: b, command: [app.py, --MLFLOW_RUN_ID, x], metrics: [m]}\n"
    )
    assert _diagnostics(text, tmp_path) == [
        "x.yaml:10:43: error[PG602]: target 'stepfunctions' passes env MLFLOW_RUN_ID to Glue as argument"
        " '--MLFLOW_RUN_ID' too (step 's'); hint: rename the argument"
    ]


def test_secrets_and_path_keys_are_refused_and_a_region_is_said(tmp_path: Path) -> None:
    backend = (
        "    type: spark\n    platform: emr_serverless\n"
        "    emr_serverless: {application_id: a1, execution_role_arn: 'arn:aws:iam::123456789012:role/r',"
        " region: eu-west-1}\n"
        "    conf: {spark.x.$: '1', spark.token: '${secret.token}'}\n"
    )
    found = _diagnostics(_one_step(backend, "[app.py, '${secret.pw}']"), tmp_path)
    assert found == [
        "x.yaml:7:106: warning[PG702]: target 'stepfunctions' runs step 's' in the state machine's region: region"
        " 'eu-west-1' is not applied; hint: deploy the state machine in that region (the region key is for the"
        " targets that call AWS themselves)",
        "x.yaml:8:12: error[PG602]: target 'stepfunctions' cannot take Spark conf key 'spark.x.$' (a key ending in"
        " '.$' is a path); hint: see 'pipegen targets' for what each target supports",
        "x.yaml:8:41: error[PG602]: target 'stepfunctions' cannot set ${secret.token} in Spark step 's'; hint: the"
        " job's request travels through the execution history; read the secret inside the job",
        "x.yaml:11:42: error[PG602]: target 'stepfunctions' cannot put ${secret.pw} in the command of Spark step"
        " 's'; hint: the job's request travels through the execution history; read the secret inside the job",
    ]


def test_the_golden_spec_has_one_step_per_platform() -> None:
    from tests.cases import GOLDEN

    doc = load((GOLDEN / "stepfunctions" / "clicks.asl.json").read_text(encoding="utf-8"))
    resources = sorted(s["Resource"] for s in doc["States"].values() if s.get("Type") == "Task")
    assert [r for r in resources if "lambda" not in r] == [
        "arn:aws:states:::elasticmapreduce:addStep.sync",
        "arn:aws:states:::emr-containers:startJobRun.sync",
        "arn:aws:states:::emr-serverless:startJobRun.sync",
        "arn:aws:states:::glue:startJobRun.sync",
    ]


def test_resources_are_said_not_applied_and_blank_arguments_refused_on_emr_on_eks(tmp_path: Path) -> None:
    backend = (
        "    type: spark\n    platform: emr_on_eks\n"
        "    emr_on_eks: {virtual_cluster_id: v1, execution_role_arn: 'arn:aws:iam::123456789012:role/r',"
        " release_label: emr-7.1.0}\n"
    )
    text = _one_step(backend, "[app.py, ' ']").replace("    task: {", "    task: {resources: {cpu: 2}, ")
    assert _diagnostics(text, tmp_path) == [
        "x.yaml:10:12: warning[PG702]: target 'stepfunctions' does not apply the resources of Spark step 's': Spark"
        " sizes the driver and executors; hint: set driver and executors on backend 'b' instead",
        "x.yaml:10:63: error[PG602]: target 'stepfunctions' cannot pass a blank argument to EMR on EKS (step 's');"
        " hint: EMR on EKS refuses entry point arguments without a visible character",
    ]


def test_the_runtime_lambda_renders_the_emr_step_of_the_golden() -> None:
    """The golden's EMR step (its command holds ${run.date}) as the runtime Lambda renders it for the Task."""
    from pipegen.runtime.lambda_handler import handler
    from tests.cases import GOLDEN

    doc = load((GOLDEN / "stepfunctions" / "clicks.asl.json").read_text(encoding="utf-8"))
    args = dict(doc["States"]["sessions"]["Parameters"]["Payload"]["args"])
    del args["context.$"]
    args["context"] = {"params": {"lookback_days": 7}, "run_id": "r1", "run_date": "2026-12-01"}
    result = handler({"action": "step", "args": args})
    assert result["job"] == {
        "Args": [
            "spark-submit",
            "--master",
            "yarn",
            "--deploy-mode",
            "cluster",
            "--conf",
            "spark.sql.shuffle.partitions=400",
            "--num-executors",
            "10",
            "--executor-cores",
            "4",
            "--executor-memory",
            "16g",
            "--py-files",
            "s3://clicks-code/clicks.zip",
            "s3://clicks-code/sessions.py",
            "--date",
            "2026-12-01",
        ]
    }
    assert doc["States"]["sessions.job"]["Parameters"]["Step"]["HadoopJarStep"]["Args.$"] == (
        "$.prepared.sessions.job.Args"
    )
