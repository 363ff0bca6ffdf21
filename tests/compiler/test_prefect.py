"""The Prefect target's output, read with `ast` and `yaml` (no prefect here: tests/prefect/ runs it in Prefect)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cases import REPO, SPECS, targets_for
from tests.conftest import CliResult

Cli = Callable[..., CliResult]
LOCATED = re.compile(r"^\S+:\d+:\d+: (error|warning)\[PG\d{3}\]: .+; hint: .+$")

SPEC = """\
pipegen: 1
name: {name}
{extra}
params:
  lr: 0.1
  epochs: 3
  label: x
  full: true
defaults:
  retries: {retries}
  retry_delay: 10s
  backoff: exponential
  {max_delay}
  timeout: 1h
backends:
  batch: {{type: aws_batch, job_queue: q, job_definition: d:1}}
steps:
  - name: ready
    gate: {{check: partition_exists, path: "s3://b/dt=${{run.date}}/", wait: {{timeout: 2h, interval: 10m}}}}
  - name: once
    after: []
    gate: {{check: partition_exists, path: /data}}
  - name: features
    after: []
    task: {{command: [echo, "${{params.label}}"]}}
  - name: fit
    after: [ready, features]
    train: {{backend: batch, command: [train, --lr, "${{params.lr}}"], metrics: [auc]}}
  - name: judge
    evaluate: {{run_of: fit, thresholds: ["auc > 0.5"], on_fail: {on_fail}}}
  - name: ship
    promote: {{model: m, run_of: fit, alias: champion}}
  - name: report
    after: [judge]
    task: {{command: [echo, done]}}
notify:
  on_failure: [{{webhook: "https://hooks.example.com/${{secret.HOOK}}"}}]
  on_success: [{{webhook: https://ok.example.com/x}}]
"""


def spec_text(
    name: str = "churn",
    extra: str = "",
    retries: int = 3,
    max_delay: str = "max_retry_delay: 1m",
    on_fail: str = "skip",
) -> str:
    return SPEC.format(name=name, extra=extra, retries=retries, max_delay=max_delay, on_fail=on_fail)


def compile_spec(cli: Cli, tmp_path: Path, text: str, name: str = "churn") -> tuple[CliResult, Path]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    return cli("compile", str(spec), "-t", "prefect", "-o", str(out)), out


def module(out: Path, name: str = "churn") -> ast.Module:
    return ast.parse((out / "prefect" / f"{name}.py").read_text(encoding="utf-8"))


def functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def decorator(fn: ast.FunctionDef, name: str) -> dict[str, Any]:
    """The keyword arguments of the function's @name(...) decorator, as source text."""
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Name) and dec.func.id == name:
            return {k.arg: ast.unparse(k.value) for k in dec.keywords}
    raise AssertionError(f"{fn.name} has no @{name}(...)")


def step_tasks(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """The task function each step (and start_run) submits, by step: `steps['<step>'] = <task>.submit('<step>', ...)`."""
    fns = functions(tree)
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            if isinstance(call.func, ast.Attribute) and call.func.attr == "submit":
                step = ast.literal_eval(call.args[0])
                assert ast.unparse(node.targets[0]) == f"steps[{step!r}]"
                assert ast.unparse(call.args[1]) == f"REQUESTS[{step!r}]"
                out[step] = fns[ast.unparse(call.func.value)]
    return out


def run_step_calls(fn: ast.FunctionDef) -> list[ast.Call]:
    return [
        n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "run_step"
    ]


def test_flow_signature_tasks_and_deployment(cli: Cli, tmp_path: Path) -> None:
    result, out = compile_spec(cli, tmp_path, spec_text())
    assert result.code == 0, result.err
    tree = module(out)
    fns = functions(tree)
    flow = fns["churn"]
    assert decorator(flow, "flow")["name"] == "'churn'"
    # The spec's params, with their defaults and types.
    args = [(a.arg, ast.unparse(a.annotation) if a.annotation else None) for a in flow.args.args]
    assert args == [("epochs", "int"), ("full", "bool"), ("label", "str"), ("lr", "float")]
    assert [ast.literal_eval(d) for d in flow.args.defaults] == [3, True, "x", 0.1]
    # Steps share tasks, one per runtime action and settings, each calling run_step for Prefect; every step (and
    # the training step's start_run) submits one with its name (its task run's) and its request, data in REQUESTS.
    tasks = step_tasks(tree)
    assert set(tasks) == {"ready", "once", "features", "fit", "judge", "ship", "report", "pipegen_start_run_fit"}
    defined = {name: fn for name, fn in fns.items() if any("task" in ast.unparse(d) for d in fn.decorator_list)}
    assert {fn.name for fn in tasks.values()} == set(defined) and len(defined) < len(tasks)
    kinds = {}
    for name, fn in tasks.items():
        assert decorator(fn, "task")["task_run_name"] == "'{step}'"
        [call] = run_step_calls(fn)
        assert {k.arg: ast.unparse(k.value) for k in call.keywords}["target"] == "'prefect'"
        kinds[name] = ast.literal_eval(call.args[0])
    assert kinds == {
        "ready": "gate",
        "once": "gate",
        "features": "local",
        "fit": "aws_batch",
        "judge": "evaluate",
        "ship": "promote",
        "report": "local",
        "pipegen_start_run_fit": "start_run",
    }
    # prefect.yaml: the deployment, its entrypoint, and no schedule.
    config = yaml.safe_load((out / "prefect" / "prefect.yaml").read_text(encoding="utf-8"))
    assert config == {"deployments": [{"name": "churn", "entrypoint": "churn.py:churn", "schedules": []}]}


def test_retries_delays_timeouts_and_retry_conditions(cli: Cli, tmp_path: Path) -> None:
    result, out = compile_spec(cli, tmp_path, spec_text())
    assert result.code == 0, result.err
    fns = step_tasks(module(out)) | functions(module(out))
    fit = decorator(fns["fit"], "task")
    # Exponential from 10 s, capped at max_retry_delay (Prefect has no cap of its own).
    assert (fit["retries"], fit["retry_delay_seconds"], fit["timeout_seconds"]) == ("3", "[10, 20, 40]", "3600")
    assert fit["cache_policy"] == "NO_CACHE"
    # A failed training job is retried whatever failed; a judgement and a gate's finished wait are final.
    assert "retry_condition_fn" not in fit
    assert "retry_condition_fn" not in decorator(fns["once"], "task")  # data may land before the next try
    assert decorator(fns["judge"], "task")["retry_condition_fn"] == "_infrastructure_only"
    ready = decorator(fns["ready"], "task")
    assert ready["retry_condition_fn"] == "_infrastructure_only"
    # A waiting gate's task outlives its whole wait (2 h + one check + start margin), and resumes it on a retry.
    assert ready["timeout_seconds"] == str(7200 + 600)
    [call] = run_step_calls(fns["ready"])
    assert "wait_started" in {k.arg for k in call.keywords}
    condition = fns["_infrastructure_only"]
    assert "is_infrastructure_error" in ast.unparse(condition)


def test_capped_delays_beyond_fifty_retries_are_exact(cli: Cli, tmp_path: Path) -> None:
    result, out = compile_spec(cli, tmp_path, spec_text(retries=80))
    assert result.code == 0, result.err
    delays = ast.literal_eval(decorator(step_tasks(module(out))["fit"], "task")["retry_delay_seconds"])
    # Prefect takes at most 50 and repeats the last: the cap, reached long before.
    assert len(delays) == 50 and delays[:4] == [10, 20, 40, 60] and set(delays[3:]) == {60}


def test_uncapped_exponential_beyond_fifty_retries_is_a_located_error(cli: Cli, tmp_path: Path) -> None:
    result, out = compile_spec(cli, tmp_path, spec_text(retries=51, max_delay=""))
    assert result.code == 1
    [line] = [line for line in result.err.splitlines() if "error[" in line]
    assert LOCATED.match(line), line
    assert "churn.yaml:10:12: error[PG602]" in line and "at most 50 retry delays" in line
    assert not out.exists()


def test_fixed_backoff_is_one_delay(cli: Cli, tmp_path: Path) -> None:
    text = spec_text(retries=70).replace("backoff: exponential", "backoff: fixed")
    result, out = compile_spec(cli, tmp_path, text)
    assert result.code == 0, result.err
    fit = decorator(step_tasks(module(out))["fit"], "task")
    assert (fit["retries"], fit["retry_delay_seconds"]) == ("70", "10")


def test_flow_submits_with_wait_for_and_branches_in_python(cli: Cli, tmp_path: Path) -> None:
    result, out = compile_spec(cli, tmp_path, spec_text())
    assert result.code == 0, result.err
    body = ast.unparse(functions(module(out))["churn"])
    # Roots are submitted without waiting; fit waits for both its upstream steps.
    assert "steps['ready'] = _gate_2.submit('ready', REQUESTS['ready'], params, run_key, run_date)" in body
    assert "steps['features'] = _local.submit('features', REQUESTS['features'], params, run_key, run_date)" in body
    assert "wait_for=[steps['features'], steps['ready']]" in body
    # Only what the evaluation may skip waits for its verdict, after everything else was submitted.
    branch = body.index("if _passed(steps, 'judge'):")
    assert body.index("steps['fit'] =") < branch < body.index("steps['ship'] =")
    assert branch < body.index("steps['report'] =")
    assert "return _finish(steps, {'judge': ['report', 'ship']})" in body


def test_on_fail_fail_has_no_branch(cli: Cli, tmp_path: Path) -> None:
    result, out = compile_spec(cli, tmp_path, spec_text(on_fail="fail"))
    assert result.code == 0, result.err
    body = ast.unparse(functions(module(out))["churn"])
    assert "_passed(" not in body and "return _finish(steps, {})" in body


def test_notifications_are_flow_hooks(cli: Cli, tmp_path: Path) -> None:
    result, out = compile_spec(cli, tmp_path, spec_text())
    assert result.code == 0, result.err
    tree = module(out)
    flow = decorator(functions(tree)["churn"], "flow")
    assert flow["on_failure"] == flow["on_crashed"] == "[_notify_failed]"
    assert flow["on_completion"] == "[_notify_succeeded]"
    text = (out / "prefect" / "churn.py").read_text(encoding="utf-8")
    # The secret is a reference the runtime renders from the worker's environment, never a value (braces escaped
    # in the JSON, as on KFP).
    assert "${secret.HOOK}" not in text and r"$\\u007bsecret.HOOK\\u007d" in text


def test_schedule_start_and_catchup_warn_and_start_is_guarded(cli: Cli, tmp_path: Path) -> None:
    extra = 'schedule: {cron: "30 4 * * 1", timezone: Europe/Paris, start: 2030-01-01, catchup: true}'
    result, out = compile_spec(cli, tmp_path, spec_text(extra=extra))
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if "warning[PG702]" in line]
    assert len(warnings) == 2 and all(LOCATED.match(w) for w in warnings), result.err
    assert "churn.yaml:3:63: warning[PG702]: target 'prefect' has no start date" in warnings[0]
    assert "churn.yaml:3:84: warning[PG702]: target 'prefect' does not catch up" in warnings[1]
    config = yaml.safe_load((out / "prefect" / "prefect.yaml").read_text(encoding="utf-8"))
    assert config["deployments"][0]["schedules"] == [{"cron": "30 4 * * 1", "timezone": "Europe/Paris", "active": True}]
    tree = module(out)
    body = ast.unparse(functions(tree)["churn"])
    assert "if _before_start(run_date):" in body and "return Completed(" in body
    assert "START = '2030-01-01'" in ast.unparse(tree)


@pytest.mark.parametrize(
    ("work_pool", "where"),
    [
        (
            "{name: 'pool-{{ $HOME }}'}",
            ":41:23: error[PG602]: target 'prefect' cannot write targets.prefect.work_pool.name",
        ),
        (
            "{name: p, job_variables: {env: {LABEL: '{{ prefect.variables.x }}'}}}",
            ":41:55: error[PG602]: target 'prefect' cannot write targets.prefect.work_pool.job_variables.env.LABEL",
        ),
        (
            "{name: p, job_variables: {env: {'{{ $X }}': 1}}}",
            ":41:48: error[PG602]: target 'prefect' cannot write a key of targets.prefect.work_pool.job_variables.env",
        ),
    ],
)
def test_template_markers_in_options_are_located_errors(cli: Cli, tmp_path: Path, work_pool: str, where: str) -> None:
    text = spec_text() + f"targets:\n  prefect:\n    work_pool: {work_pool}\n"
    result, out = compile_spec(cli, tmp_path, text)
    assert result.code == 1
    [line] = [line for line in result.err.splitlines() if "error[" in line]
    assert LOCATED.match(line) and where in line and "'{{'" in line, line
    assert not out.exists()


def test_a_job_variable_is_named_like_one(cli: Cli, tmp_path: Path) -> None:
    text = spec_text() + "targets:\n  prefect:\n    work_pool: {name: p, job_variables: {'{{ $X }}': 1}}\n"
    result, _ = compile_spec(cli, tmp_path, text)
    assert result.code == 1
    [line] = [line for line in result.err.splitlines() if "error[" in line]
    assert LOCATED.match(line) and "error[PG202]" in line, line


def test_work_pool_reaches_prefect_yaml(cli: Cli, tmp_path: Path) -> None:
    text = spec_text() + "targets:\n  prefect:\n    work_pool: {name: ml-pool, job_variables: {env: {A: b}}}\n"
    result, out = compile_spec(cli, tmp_path, text)
    assert result.code == 0, result.err
    config = yaml.safe_load((out / "prefect" / "prefect.yaml").read_text(encoding="utf-8"))
    assert config["deployments"][0]["work_pool"] == {"name": "ml-pool", "job_variables": {"env": {"A": "b"}}}


def test_kubernetes_steps_compile_to_a_prefect_kubernetes_task(cli: Cli, tmp_path: Path) -> None:
    result = cli("compile", "specs/feed-ranking.yaml", "-t", "prefect", "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err
    text = (tmp_path / "out" / "prefect" / "feed-ranking.py").read_text(encoding="utf-8")
    assert "from prefect_kubernetes.credentials import KubernetesCredentials" in text
    # Inside `with ending_run(...)`: the MLflow run the Job left RUNNING ends as the attempt ended.
    assert "asyncio.run(\n            run_job(\n                credentials,\n                objects," in text
    # prefect-kubernetes is imported inside the task only: the module imports Prefect alone at load.
    top = {n.module for n in ast.parse(text).body if isinstance(n, ast.ImportFrom)}
    assert not any(m and m.startswith("prefect_kubernetes") for m in top)


K8S_SPEC = """pipegen: 1
name: k
backends:
  gpu:
    type: kubernetes
    image: img:1
    distributed_runtime: {runtime}
    env: {{GREETING: "hello ${{secret.word}}"}}
steps:
  - name: train
    train:
      backend: gpu
      command: [python, train.py, --word, "${{secret.word}}"]
      distributed: {{nodes: 2}}
"""


@pytest.mark.parametrize("runtime", ["jobset", "trainjob"])
def test_what_a_prefect_kubernetes_task_cannot_send_is_a_located_error(cli: Cli, tmp_path: Path, runtime: str) -> None:
    result, _ = compile_spec(cli, tmp_path, K8S_SPEC.format(runtime=runtime))
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if "error[" in line]
    assert all(LOCATED.match(e) for e in errors), result.err
    assert [e.split(": error")[0].rsplit(":", 2)[1:] for e in errors] == [["7", "26"], ["8", "21"], ["13", "43"]]
    assert f"target 'prefect' does not run distributed_runtime '{runtime}'" in errors[0]
    assert "hint: use distributed_runtime: indexed_job" in errors[0]
    assert "only as the whole value" in errors[1] and "secret in the command" in errors[2]


def test_keyword_parameter_is_a_located_error(cli: Cli, tmp_path: Path) -> None:
    text = spec_text().replace("  label: x\n", "  label: x\n  class: 1\n")
    result, _ = compile_spec(cli, tmp_path, text)
    assert result.code == 1
    [line] = [line for line in result.err.splitlines() if "error[" in line]
    assert "churn.yaml:8:3: error[PG602]: target 'prefect' cannot take parameter 'class'" in line


def test_parameters_never_hide_what_the_flow_calls(cli: Cli, tmp_path: Path) -> None:
    # Parameters named like a step, a shared task, a helper and a flow variable: the module's names step aside.
    text = spec_text(name="ship").replace(
        "  label: x\n", "  label: x\n  fit: 1\n  _passed: 2\n  steps: 3\n  float: 4\n  _aws_batch: 5\n"
    )
    result, out = compile_spec(cli, tmp_path, text, name="ship")
    assert result.code == 0, result.err
    tree = module(out, "ship")
    fns = functions(tree)
    flow = fns["ship"]
    params = ["_aws_batch", "_passed", "epochs", "fit", "float", "full", "label", "lr", "steps"]
    assert [a.arg for a in flow.args.args] == params
    assert {"_passed_", "_aws_batch_"} <= set(fns) and not set(params) & set(fns)
    body = ast.unparse(flow)
    assert "steps['fit'] = _aws_batch_.submit('fit'," in body and "_passed_(steps, 'judge')" in body
    # The flow reads every parameter into `params` before it assigns any name of its own.
    first = flow.body[1]
    assert isinstance(first, ast.Assign) and ast.unparse(first.targets[0]) == "params"
    assert ast.unparse(first.value).startswith("{'_aws_batch': _aws_batch, '_passed': _passed, 'epochs': epochs,")


def test_specs_compiled_together_share_one_prefect_yaml(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # Every example spec Prefect compiles (tests/cases.py), as golden/prefect/ holds them.
    specs = [spec for spec in SPECS if "prefect" in targets_for(spec)]
    names = sorted(str(yaml.safe_load(spec.read_text(encoding="utf-8"))["name"]) for spec in specs)
    assert {"demo", "pricing"} <= set(names)
    result = cli("compile", *(f"specs/{spec.name}" for spec in specs), "-t", "prefect", "-o", str(out))
    assert result.code == 0, result.err
    text = (out / "prefect" / "prefect.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert [d["name"] for d in config["deployments"]] == names
    assert [d["entrypoint"] for d in config["deployments"]] == [f"{n}.py:{n.replace('-', '_')}" for n in names]
    assert all(f"from specs/{spec.name}" in text for spec in specs)
    assert sorted(p.name for p in (out / "prefect").iterdir()) == sorted([*(f"{n}.py" for n in names), "prefect.yaml"])
    # The same bytes as golden/ (which holds every example spec's Prefect output).
    assert text == (REPO / "golden" / "prefect" / "prefect.yaml").read_text(encoding="utf-8")
