"""Independent steps run side by side: Parallel states, proven in moto's executor (issue 16).

Concurrency is observed through moto, not timing: a Batch job's submission waits (bounded) until the
other branch's job has been submitted too, which only happens when the branches really run together.
"""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest

from tests.stepfunctions.asl import all_states, compile_text, load, validate, with_targets
from tests.stepfunctions.support import history, run_state_machine
from tests.support_aws import batch_queue
from tests.support_mlflow import MlflowServer, play_training

JOBS = "backends:\n  jobs: {type: aws_batch, job_queue: ml-cpu-64, job_definition: pricing-train:3}\n"


def _compile(text: str, tmp_path: Path, name: str) -> str:
    """Compile for Step Functions and check the definition with asl-validator."""
    outputs, diags = compile_text(text, tmp_path, f"{name}.yaml")
    assert outputs, diags
    definition = outputs[f"stepfunctions/{name}.asl.json"]
    path = tmp_path / f"{name}.asl.json"
    path.write_text(definition, encoding="utf-8")
    checked = validate(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return definition


def _explain(result: dict[str, Any]) -> str:
    failed = [e for e in history(result["executionArn"]) if "Failed" in e["type"]]
    return f"{result['status']}: {result.get('error')} {result.get('cause')}\n{json.dumps(failed, default=str)[:3000]}"


def _parallels(states: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Parallel state, nested ones included."""
    found = []
    for state in states.values():
        if state["Type"] == "Parallel":
            found.append(state)
            for branch in state["Branches"]:
                found.extend(_parallels(branch["States"]))
    return found


class _Jobs:
    """moto's Batch submissions, each held until `together` jobs have been submitted (or a bound passes)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, together: int = 1, play: Any = None) -> None:
        from moto.batch_simple.models import BatchSimpleBackend

        self.order: list[str] = []
        self.overlapped: list[bool] = []
        self._lock = threading.Condition()
        original = BatchSimpleBackend.submit_job
        jobs = self

        def submit_job(backend: Any, *args: Any, **kwargs: Any) -> Any:
            overrides = kwargs.get("container_overrides") or {}
            command = overrides.get("command") or []
            env = {e["name"]: e["value"] for e in overrides.get("environment", [])}
            with jobs._lock:
                jobs.order.append(command[0] if command else "")
                jobs._lock.notify_all()
                # Sequential execution never submits the next job while this one is held: the wait times out.
                met = jobs._lock.wait_for(lambda: len(jobs.order) >= together, timeout=20)
                jobs.overlapped.append(met)
            if play is not None:
                play(command, env)
            return original(backend, *args, **kwargs)

        monkeypatch.setattr(BatchSimpleBackend, "submit_job", submit_job)


def test_a_fan_out_submits_both_jobs_before_either_finishes(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    batch_queue("ml-cpu-64", "pricing-train:3")
    jobs = _Jobs(monkeypatch, together=2)
    text = (
        f"pipegen: 1\nname: fanout\n{JOBS}steps:\n"
        "  - name: left\n    after: []\n    task: {backend: jobs, command: [left]}\n"
        "  - name: right\n    after: []\n    task: {backend: jobs, command: [right]}\n"
        "  - name: both\n    after: [left, right]\n    task: {backend: jobs, command: [both]}\n"
    )
    definition = _compile(text, tmp_path, "fanout")
    result = run_state_machine(definition, name, {})
    assert result["status"] == "SUCCEEDED", _explain(result)
    # Each of the two was submitted while the other was held in its submission: they ran together.
    assert sorted(jobs.order[:2]) == ["left", "right"] and jobs.order[2] == "both"
    assert jobs.overlapped[:2] == [True, True]
    (parallel,) = _parallels(load(definition)["States"])
    assert [b["StartAt"] for b in parallel["Branches"]] == ["left", "right"]


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Any:
    """A local webhook receiver; yields its URL, and its messages are in _Receiver.received."""
    _Receiver.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


@pytest.mark.parametrize("nested", [False, True])
def test_a_failure_inside_a_branch_fails_the_run_once_with_one_notification(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, receiver: str, nested: bool
) -> None:
    batch_queue("ml-cpu-64", "pricing-train:3")
    jobs = _Jobs(monkeypatch)
    boto3.client("s3").create_bucket(Bucket="branch-data")
    # The gate checks once and finds nothing: its Lambda call fails, so its branch, its Parallel(s), the run.
    side = "  - name: side\n    after: [ready]\n    task: {backend: jobs, command: [side]}\n" if nested else ""
    text = (
        f"pipegen: 1\nname: failing\ndefaults: {{retries: 1, retry_delay: 1s}}\n{JOBS}steps:\n"
        "  - name: ready\n    after: []\n    gate: {check: partition_exists, path: 's3://branch-data/none/'}\n"
        + side
        + "  - name: work\n    after: []\n    task: {backend: jobs, command: [work]}\n"
        "  - name: after_ready\n    after: [ready]\n    task: {backend: jobs, command: [after_ready]}\n"
        f"  - name: end\n    after: [work, after_ready{', side' if nested else ''}]\n    task: {{backend: jobs, command: [end]}}\n"
        f"notify:\n  on_failure: [{{webhook: '{receiver}'}}]\n"
    )
    definition = _compile(text, tmp_path, "failing")
    states = load(definition)["States"]
    assert len(_parallels(states)) == (2 if nested else 1)
    # Only top-level states catch: inside a branch a failure propagates to the Parallel.
    top = {n for n, s in states.items() if "Catch" in s}
    assert all("Catch" not in s for n, s in all_states(states).items() if n not in top)
    result = run_state_machine(definition, name, {})
    assert result["status"] == "FAILED", _explain(result)
    assert result["error"] == "pipegen.PipelineFailed"
    assert "branch-data" in result["cause"]
    kinds = [e["args"]["kind"] for e in sfn]
    assert kinds.count("gate") == 2  # the step's own retry, unchanged inside the branch
    assert kinds.count("notify") == 1
    (message,) = _Receiver.received
    assert message["event"] == "failed" and message["run"] == f"{name}-run"
    assert "after_ready" not in jobs.order and "end" not in jobs.order


def _skipping_spec(language: str) -> str:
    text = (
        "pipegen: 1\nname: skipping\n"
        "backends:\n  jobs: {type: aws_batch, job_queue: ml-cpu-64, job_definition: pricing-train:3}\n"
        "steps:\n"
        "  - name: train_a\n    after: []\n    train: {backend: jobs, command: [a], metrics: [score]}\n"
        "  - name: quality_a\n    evaluate: {run_of: train_a, thresholds: ['score > 0.5'], on_fail: skip}\n"
        "  - name: promote_a\n    promote: {model: MODEL-a, run_of: train_a, alias: champion}\n"
        "  - name: train_b\n    after: []\n    train: {backend: jobs, command: [b], metrics: [score]}\n"
        "  - name: quality_b\n    evaluate: {run_of: train_b, thresholds: ['score > 0.5'], on_fail: skip}\n"
        "  - name: promote_b\n    promote: {model: MODEL-b, run_of: train_b, alias: champion}\n"
        "  - name: side\n    after: []\n    task: {backend: jobs, command: [side]}\n"
        "  - name: report\n    after: [promote_a, promote_b]\n    task: {backend: jobs, command: [report]}\n"
        "  - name: after_side\n    after: [side, train_a]\n    task: {backend: jobs, command: [after_side]}\n"
    )
    return with_targets(text, query_language=language) if language == "JSONata" else text


def test_a_skip_inside_a_branch_skips_only_its_descendants(
    sfn: list[dict[str, Any]], mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    batch_queue("ml-cpu-64", "pricing-train:3")

    def play(command: list[str], env: dict[str, str]) -> None:
        if command in (["a"], ["b"]):
            score = 0.1 if command == ["a"] else 0.9  # a fails its thresholds, b passes
            play_training(env["MLFLOW_TRACKING_URI"], env["MLFLOW_RUN_ID"], {"score": score})

    jobs = _Jobs(monkeypatch, play=play)
    text = _skipping_spec("JSONPath").replace("MODEL", name)
    definition = _compile(text, tmp_path, "skipping")
    result = run_state_machine(definition, name, {})
    assert result["status"] == "SUCCEEDED", _explain(result)
    # quality_a failed: promote_a and report (below it) skipped; b promoted; side and after_side ran.
    assert sorted(jobs.order) == ["a", "after_side", "b", "side"]
    promoted = sorted(json.loads(e["args"]["spec_json"])["model"] for e in sfn if e["args"]["kind"] == "promote")
    assert promoted == [f"{name}-b"]
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    assert client.get_model_version_by_alias(f"{name}-b", "champion").version == "1"
    assert not client.search_registered_models(f"name = '{name}-a'")


def test_a_threshold_failure_inside_a_branch_fails_with_its_reasons(
    sfn: list[dict[str, Any]],
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    receiver: str,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    batch_queue("ml-cpu-64", "pricing-train:3")

    def play(command: list[str], env: dict[str, str]) -> None:
        if command == ["a"]:
            play_training(env["MLFLOW_TRACKING_URI"], env["MLFLOW_RUN_ID"], {"score": 0.1})

    _Jobs(monkeypatch, play=play)
    text = (
        f"pipegen: 1\nname: judged\n{JOBS}steps:\n"
        "  - name: train_a\n    after: []\n    train: {backend: jobs, command: [a], metrics: [score]}\n"
        "  - name: quality_a\n    evaluate: {run_of: train_a, thresholds: ['score > 0.5'], on_fail: fail}\n"
        "  - name: side\n    after: []\n    task: {backend: jobs, command: [side]}\n"
        f"notify:\n  on_failure: [{{webhook: '{receiver}'}}]\n"
    )
    definition = _compile(text, tmp_path, "judged")
    states = all_states(load(definition)["States"])
    assert states["quality_a.failed"]["Type"] == "Fail"
    result = run_state_machine(definition, name, {})
    assert result["status"] == "FAILED", _explain(result)
    assert "score" in result["cause"]
    (message,) = _Receiver.received
    assert message["error"] == "pipegen.ThresholdsNotMet"
    assert [e["args"]["kind"] for e in sfn].count("evaluate") == 1  # a failed judgement is not retried


# ---- shapes --------------------------------------------------------------------------------------


def _chain_of(n: int) -> str:
    steps = "".join(f"  - name: s{i}\n    task: {{backend: jobs, command: [s{i}]}}\n" for i in range(n))
    return f"pipegen: 1\nname: shape\n{JOBS}steps:\n{steps}"


def test_a_chain_has_no_parallel_state(tmp_path: Path) -> None:
    states = load(_compile(_chain_of(5), tmp_path, "shape"))["States"]
    assert _parallels(states) == []
    assert [n for n in states if not n.startswith("pipegen.")] == [f"s{i}" for i in range(5)]


def test_a_graph_that_is_not_series_parallel_runs_in_waves_and_says_so(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """a -> c, b -> c, b -> d (an "N"): no nesting expresses it exactly; waves never run a step early."""
    batch_queue("ml-cpu-64", "pricing-train:3")
    jobs = _Jobs(monkeypatch)
    text = (
        f"pipegen: 1\nname: nshape\n{JOBS}steps:\n"
        "  - name: a\n    after: []\n    task: {backend: jobs, command: [a]}\n"
        "  - name: b\n    after: []\n    task: {backend: jobs, command: [b]}\n"
        "  - name: c\n    after: [a, b]\n    task: {backend: jobs, command: [c]}\n"
        "  - name: d\n    after: [b]\n    task: {backend: jobs, command: [d]}\n"
    )
    definition = _compile(text, tmp_path, "nshape")
    outer = _parallels(load(definition)["States"])[0]
    assert "not series-parallel" in outer["Comment"] and "2 waves" in outer["Comment"]
    result = run_state_machine(definition, name, {})
    assert result["status"] == "SUCCEEDED", _explain(result)
    position = {job: i for i, job in enumerate(jobs.order)}
    assert position["c"] > max(position["a"], position["b"]) and position["d"] > position["b"]


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_parallel_definitions_pass_the_validator(language: str, tmp_path: Path) -> None:
    text = _skipping_spec(language)
    definition = _compile(text, tmp_path, "skipping")
    states = load(definition)["States"]
    assert _parallels(states)
    everything = all_states(states)
    # Every Catch is on a top-level state, or in a branch on a train step's job and its two closing states (which
    # end the MLflow run the job left RUNNING, then fail the branch or go on); a branch's last state keeps only
    # what later steps read.
    caught = {n for n, s in everything.items() if "Catch" in s and n not in states}
    assert caught == {f"{step}.{part}" for step in ("train_a", "train_b") for part in ("job", "close", "closing")}
    ends = [s for n, s in everything.items() if n.endswith(".end")]
    assert ends and all(s["Type"] == "Pass" and s["End"] for s in ends)


def _compile_peak(tmp_path: Path, n: int) -> int:
    """Peak bytes allocated while compiling a chain of n Batch steps for Step Functions."""
    import tracemalloc

    from pipegen.compiler import compile_checked
    from pipegen.frontend import check_file

    steps = "".join(f"  - name: s{i}\n    task: {{backend: jobs, command: [s{i}]}}\n" for i in range(n))
    spec = tmp_path / f"long{n}.yaml"
    spec.write_text(f"pipegen: 1\nname: long{n}\n{JOBS}steps:\n{steps}")
    checked = check_file(str(spec))
    tracemalloc.start()
    result = compile_checked(checked, ["stepfunctions"])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.ok, [d.format() for d in result.diagnostics]
    return peak


def test_the_lowering_is_linear_in_steps(tmp_path: Path) -> None:
    """Four times the steps take about four times the memory (per-step sets of descendants took sixteen)."""
    small, large = _compile_peak(tmp_path, 500), _compile_peak(tmp_path, 2000)
    assert large / small < 6, (small, large)


# ---- JSONata: variables per scope, evaluated with the reference jsonata ------------------------------


def _assigned(states: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for state in states.values():
        names |= set(state.get("Assign", {}))
        for catcher in state.get("Catch", []):
            names |= set(catcher.get("Assign", {}))
    return names


def _scope_clashes(states: dict[str, Any], outer: frozenset[str] = frozenset()) -> list[str]:
    """Variables a branch assigns that an enclosing scope assigns too (Step Functions refuses that write)."""
    mine = _assigned(states)
    clashes = sorted(mine & outer)
    for state in states.values():
        for branch in state.get("Branches", []):
            clashes += _scope_clashes(branch["States"], outer | mine)
    return clashes


def test_jsonata_branches_never_assign_an_outer_variable(tmp_path: Path) -> None:
    doc = load(_compile(_skipping_spec("JSONata"), tmp_path, "skipping"))
    assert _parallels(doc["States"])
    assert _scope_clashes(doc["States"]) == []
    # The check can fail: a branch assigning a top-level name is reported.
    broken = json.loads(json.dumps(doc["States"]))
    parallel = _parallels(broken)[0]
    first = parallel["Branches"][0]["States"]
    next(iter(first.values())).setdefault("Assign", {})["pipegen"] = 1
    assert _scope_clashes(broken) == ["pipegen"]


def test_jsonata_skip_verdicts_leave_their_branch(tmp_path: Path) -> None:
    """A skipped branch's default verdict reaches the outer scope, where the guard below reads it as not passed."""
    from tests.stepfunctions.test_jsonata import _generic_bindings, evaluate, expressions

    doc = load(_compile(_skipping_spec("JSONata"), tmp_path, "skipping"))
    exprs = expressions(doc)
    bindings = _generic_bindings(exprs)
    results = evaluate([{"expr": e, "bindings": bindings} for e in exprs])
    assert [(e, r) for e, r in zip(exprs, results, strict=True) if "error" in r] == []
    # The branch that holds quality_a: its start sets the default verdict, its end exports it.
    parallel, index = next(
        (p, i) for p in _parallels(doc["States"]) for i, b in enumerate(p["Branches"]) if "quality_a" in b["States"]
    )
    branch = parallel["Branches"][index]["States"]
    start = branch[parallel["Branches"][index]["StartAt"]]
    end = next(s for n, s in branch.items() if n.endswith(".end"))
    (exported,) = evaluate([{"expr": end["Output"][2:-2].strip(), "bindings": dict(start["Assign"])}])
    assert exported["value"]["evaluations_quality_a"] == {"passed": False}
    # The Parallel copies it one scope out; the guard of a step below both branches reads it there.
    key = next(k for k in parallel["Assign"] if k.startswith("evaluations_quality_a"))
    result: list[Any] = [{}] * len(parallel["Branches"])
    result[index] = exported["value"]
    (picked,) = evaluate([{"expr": parallel["Assign"][key][2:-2].strip(), "bindings": {"states": {"result": result}}}])
    assert picked == {"value": {"passed": False}}


def test_a_fan_out_below_a_skip_evaluation_needs_no_guards(tmp_path: Path) -> None:
    """Failing, the evaluation ends the run before the Parallel; inside it nothing checks the verdict again."""
    tasks = "".join(
        f"  - name: t{i}\n    after: [quality]\n    task: {{backend: jobs, command: [t{i}]}}\n" for i in range(5)
    )
    text = (
        f"pipegen: 1\nname: wide\n{JOBS}steps:\n"
        "  - name: train\n    train: {backend: jobs, command: [a], metrics: [score]}\n"
        "  - name: quality\n    evaluate: {run_of: train, thresholds: ['score > 0.5'], on_fail: skip}\n"
        + tasks
        + "  - name: final\n    after: [t0, t1, t2, t3, t4]\n    task: {backend: jobs, command: [final]}\n"
    )
    states = load(_compile(text, tmp_path, "wide"))["States"]
    assert states["quality.passed"]["Default"] == "pipegen.done"
    assert [n for n in all_states(states) if n.endswith(".enabled")] == ["final.enabled"]
