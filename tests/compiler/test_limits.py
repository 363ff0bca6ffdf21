"""Every duration, count and number in a spec is bounded by what every target accepts (pipegen.spec.LIMITS).

Each row of the table is tried at its bounds through `pipegen validate`'s front end: the bound itself passes,
one step past it is a located PG210 naming the bound and the reason.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipegen.diagnostics import Diagnostic
from pipegen.durations import format_duration
from pipegen.frontend import check_source
from pipegen.loader import Source, load_text
from pipegen.spec import JSON_SAFE_INT, LIMITS

BASE: dict[str, Any] = {
    "pipegen": 1,
    "name": "limits",
    "params": {"n": 1, "x": 0.5},
    "defaults": {"retries": 1, "retry_delay": "5m", "backoff": "exponential", "max_retry_delay": "1h", "timeout": "2h"},
    "backends": {
        "sm": {
            "type": "sagemaker",
            "role_arn": "arn:aws:iam::123456789012:role/r",
            "image": "img:1",
            "instance_type": "ml.m5.xlarge",
            "instance_count": 1,
            "output_path": "s3://b/o/",
        },
        "sp": {
            "type": "spark",
            "master": "local[2]",
            "driver": {"cores": 1, "memory": "1g"},
            "executors": {"instances": 1, "cores": 1, "memory": "1g"},
        },
        "ry": {"type": "ray", "address": "local", "entrypoint_resources": {"cpus": 1, "gpus": 0}},
        "rc": {"type": "ray", "cluster": {"image": "img:1", "workers": [{"name": "w", "replicas": 1}]}},
        "k8": {
            "type": "kubernetes",
            "image": "img:1",
            "startup_timeout": "10m",
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoExecute", "toleration_seconds": 60}],
        },
    },
    "steps": [
        {
            "name": "fresh",
            "gate": {"check": "freshness", "path": "s3://b/x/", "max_age": "1d", "wait": {"timeout": "2h"}},
        },
        {
            "name": "rows",
            "gate": {"check": "row_count", "connection": "${secret.db}", "table": "t", "min_rows": 1},
        },
        {
            "name": "train",
            "train": {
                "backend": "sm",
                "command": ["python", "${params.n}", "${params.x}"],
                "resources": {"cpu": 1, "gpu": 1},
                "metrics": ["auc"],
            },
        },
        {"name": "quality", "evaluate": {"run_of": "train", "champion": {"metric": "auc", "min_delta": 0.0}}},
        {"name": "promote", "promote": {"model": "m", "run_of": "train"}},
        {"name": "features", "task": {"backend": "sp", "command": ["features.py"]}},
        {"name": "tune", "task": {"backend": "ry", "command": ["python", "tune.py"]}},
        {"name": "sweep", "task": {"backend": "rc", "command": ["python", "sweep.py"]}},
        {
            "name": "spread",
            "task": {
                "backend": "k8",
                "command": ["python", "spread.py"],
                "resources": {"gpu": 2},
                "distributed": {"nodes": 2, "procs_per_node": 2},
            },
        },
    ],
}

# Where each row of LIMITS is written in BASE. The test below fails if a row has no place here.
PLACES: dict[str, tuple[str | int, ...]] = {
    "timeout": ("steps", 1, "timeout"),
    "sagemaker.timeout": ("steps", 2, "timeout"),
    "retry_delay": ("defaults", "retry_delay"),
    "max_retry_delay": ("defaults", "max_retry_delay"),
    "retries": ("defaults", "retries"),
    "wait.timeout": ("steps", 0, "gate", "wait", "timeout"),
    "wait.interval": ("steps", 0, "gate", "wait", "interval"),
    "max_age": ("steps", 0, "gate", "max_age"),
    "min_rows": ("steps", 1, "gate", "min_rows"),
    "instance_count": ("backends", "sm", "instance_count"),
    "resources.gpu": ("steps", 2, "train", "resources", "gpu"),
    "resources.cpu": ("steps", 2, "train", "resources", "cpu"),
    "resources.memory": ("steps", 2, "train", "resources", "memory"),
    "champion.min_delta": ("steps", 3, "evaluate", "champion", "min_delta"),
    "params.integer": ("params", "n"),
    "params.number": ("params", "x"),
    "spark.cores": ("backends", "sp", "executors", "cores"),
    "spark.instances": ("backends", "sp", "executors", "instances"),
    "spark.memory": ("backends", "sp", "driver", "memory"),
    "ray.cpus": ("backends", "ry", "entrypoint_resources", "cpus"),
    "ray.gpus": ("backends", "ry", "entrypoint_resources", "gpus"),
    "ray.replicas": ("backends", "rc", "cluster", "workers", 0, "replicas"),
    "distributed.nodes": ("steps", 8, "task", "distributed", "nodes"),
    "distributed.procs_per_node": ("steps", 8, "task", "distributed", "procs_per_node"),
    "startup_timeout": ("backends", "k8", "startup_timeout"),
    "toleration_seconds": ("backends", "k8", "tolerations", 0, "toleration_seconds"),
}


def source(change: Callable[[dict[str, Any]], None]) -> Source:
    data = copy.deepcopy(BASE)
    change(data)
    return Source("limits.yaml", yaml.safe_dump(data, sort_keys=False))


def check(change: Callable[[dict[str, Any]], None]) -> list[Diagnostic]:
    return check_source(source(change)).diagnostics


def put(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        node: Any = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return apply


def written(key: str, value: float) -> Any:
    """A value as the spec writes it for this row: a duration string for durations."""
    if key == "resources.memory":  # counted in MiB, written as a quantity
        return f"{int(value) if float(value).is_integer() else value}Mi"
    if key == "spark.memory":  # counted in MiB, written as the JVM writes it
        return f"{int(value)}m"
    return format_duration(int(value)) if LIMITS[key].kind == "duration" else value


def test_every_limit_has_a_place() -> None:
    assert set(PLACES) == set(LIMITS)


def test_base_is_clean() -> None:
    assert [d.format() for d in check(lambda d: None)] == []


@pytest.mark.parametrize("key", sorted(LIMITS))
def test_the_bounds_themselves_pass(key: str) -> None:
    limit = LIMITS[key]
    for value in (limit.low, limit.high):
        if key in ("wait.interval", "wait.timeout"):  # an interval also fits its timeout (PG400)
            change = put(
                ("steps", 0, "gate", "wait"), {"timeout": written(key, value), "interval": written(key, value)}
            )
        else:
            change = put(PLACES[key], written(key, value))
        errors = [d.format() for d in check(change) if d.severity == "error"]
        assert errors == [], (key, value)


def _past(key: str) -> list[tuple[str, Any]]:
    """Values just outside the row's range, as the spec writes them, with the bound the message must name."""
    limit = LIMITS[key]
    step = {"resources.cpu": 0.0005, "resources.memory": 0.5}.get(key, 1)
    out: list[tuple[str, Any]] = []
    if limit.high == sys.float_info.max:  # bounded above only by JSON: Infinity and NaN
        out += [("finite", float("inf")), ("finite", float("nan"))]
    else:
        out.append((f"at most {limit.show(limit.high)}", written(key, limit.high + 1)))
    # A duration cannot be written below 0s.
    if limit.low > -sys.float_info.max and (limit.low > 0 or limit.kind != "duration"):
        out.append((f"at least {limit.show(limit.low)}", written(key, limit.low - step)))
    return out


@pytest.mark.parametrize("key", sorted(LIMITS))
def test_one_past_a_bound_is_a_located_error_naming_it(key: str) -> None:
    path = PLACES[key]
    limit = LIMITS[key]
    for bound, value in _past(key):
        src = source(put(path, value))
        [d] = check_source(src).diagnostics
        assert d.location == load_text(src).smap.value(path), d.format()
        if value == "0s":  # a zero duration where more is needed keeps its own code
            assert d.code == "PG205" and d.message.startswith("duration '0s' must be longer than zero")
            assert limit.why_low in d.message
            continue
        assert d.code == "PG210", d.format()
        assert d.message.startswith(f"{limit.label} "), d.format()
        if bound == "finite":
            assert "is not a finite number" in d.message
        elif bound.startswith("at most"):
            assert f"exceeds the limit: {bound} ({limit.why})" in d.message
        else:
            assert f"is below the limit: {bound}" in d.message and limit.why_low in d.message


def test_the_issue_14_timeout() -> None:
    """`timeout: 99999999999d` validated, then Airflow overflowed and Step Functions got an absurd TimeoutSeconds."""
    text = "pipegen: 1\nname: x\ndefaults:\n  timeout: 99999999999d\nsteps:\n  - name: t\n    task: {command: [x]}\n"
    [d] = check_source(Source("x.yaml", text)).diagnostics
    assert d.format() == (
        "x.yaml:4:12: error[PG210]: timeout '99999999999d' exceeds the limit: at most 365d (Step Functions runs an"
        " execution for at most a year); hint: use a duration from 1s to 365d"
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [("1.0e+38", "1e+38"), ("1e38", "'1e38'"), ("5.0", "5.0"), ("true", "true")],
)
def test_a_non_integer_count_names_the_range(text: str, shown: str) -> None:
    """A YAML float (or text PyYAML reads from `1e38`) where an integer goes: the message gives the range."""
    spec = yaml.safe_dump(BASE, sort_keys=False).replace("min_rows: 1", f"min_rows: {text}")
    [d] = check_source(Source("x.yaml", spec)).diagnostics
    assert d.code == "PG202"
    assert d.message == f"min_rows {shown} is not an integer from 0 to {JSON_SAFE_INT}"


def test_integer_params_round_trip_through_a_double() -> None:
    """The int range is exactly the doubles' exact integers: 2**53-1 survives float(), 2**53+1 does not."""
    assert float(JSON_SAFE_INT) == JSON_SAFE_INT and float(JSON_SAFE_INT + 2) != JSON_SAFE_INT + 2
    assert check(put(("params", "n"), -JSON_SAFE_INT)) == []
    [d] = check(put(("params", "n"), JSON_SAFE_INT + 2))
    assert d.code == "PG210" and "KFP" in d.message
    # Booleans and strings are not numbers: `true` and a long digit string stay as written.
    assert check(put(("params", "n"), True)) == []
    assert check(put(("params", "n"), "9" * 40)) == []


@pytest.mark.parametrize(("cpu", "ok"), [("500m", True), ("0.5", True), (0.25, True), ("0m", False), (0.0015, False)])
def test_cpu_in_whole_millicores(cpu: Any, ok: bool) -> None:
    diags = check(put(PLACES["resources.cpu"], cpu))
    assert (diags == []) == ok, [d.format() for d in diags]
    if not ok:
        assert [d.code for d in diags] == ["PG210"]


def test_a_wait_interval_longer_than_its_timeout_is_still_reported() -> None:
    [d] = check(put(("steps", 0, "gate", "wait"), {"timeout": "1h", "interval": "2h"}))
    assert d.code == "PG400" and "checks only every 2h" in d.message


AT_THE_BOUNDS = """\
pipegen: 1
name: bounds
params: {big: 9007199254740991, small: -9007199254740991, x: 1.0e+308}
defaults: {retries: 100, retry_delay: 365d, backoff: exponential, max_retry_delay: 365d, timeout: 365d}
backends:
  sm: {type: sagemaker, role_arn: "arn:aws:iam::123456789012:role/r", image: "img:1", instance_type: ml.m5.xlarge,
       instance_count: 2147483647, output_path: "s3://b/o/"}
  batch: {type: aws_batch, job_queue: q, job_definition: d}
steps:
  - name: ready
    gate: {check: freshness, path: "s3://b/x/", max_age: 36500d, wait: {timeout: 365d, interval: 365d}}
  - name: rows
    gate: {check: row_count, connection: "${secret.db}", table: t, min_rows: 9007199254740991}
  - name: prep
    task: {backend: batch, command: [python, prep.py], resources: {cpu: 2147483647, gpu: 2147483647}}
  - name: train
    timeout: 28d
    train: {backend: sm, command: [python, "${params.big}", "${params.small}", "${params.x}"], metrics: [auc]}
  - name: quality
    evaluate: {run_of: train, champion: {metric: auc, min_delta: 1.0e+308}}
  - name: promote
    promote: {model: m, run_of: train}
targets:
  kfp: {base_image: "registry.example.com/ml/pipegen-runtime:0.1"}
  argo: {runtime_image: "registry.example.com/ml/pipegen-runtime:0.1"}
"""


def test_a_spec_at_the_upper_bounds_compiles_for_every_target(tmp_path: Path) -> None:
    """The bounds are what every target takes: each compiles it, and asl-validator passes the state machine.

    (Airflow's DagBag and the kfp compiler take the same files: checked by hand for issue 14; the engines live in
    other environments than this test's.)
    """
    from pipegen.compiler import compile_checked
    from pipegen.targets import available
    from tests.stepfunctions.asl import load, validate

    result = compile_checked(check_source(Source("bounds.yaml", AT_THE_BOUNDS)), list(available()))
    assert result.ok, [d.format() for d in result.diagnostics]
    outputs = {o.path: o.text for o in result.outputs}
    asl = tmp_path / "bounds.asl.json"
    asl.write_text(outputs["stepfunctions/bounds.asl.json"])
    proc = validate(asl)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    states = load(asl.read_text())["States"]
    assert states["prep"]["TimeoutSeconds"] == 365 * 86400
    assert states["ready.wait"]["Seconds"] == 365 * 86400
    [retrier] = states["prep"]["Retry"]
    # Within what Step Functions takes: IntervalSeconds <= 99999999, MaxDelaySeconds < 31622401.
    assert retrier["IntervalSeconds"] <= 99999999 and retrier["MaxDelaySeconds"] < 31622401
    assert "timedelta(seconds=31536000)" in outputs["airflow/bounds.py"]
    assert "9007199254740991" in outputs["kfp/bounds.py"]
    from tests.argo.strict import documents, validate_document

    for doc in documents(outputs["argo/bounds.yaml"]):
        validate_document(doc)
