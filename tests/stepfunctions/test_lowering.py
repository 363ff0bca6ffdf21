"""Step Functions lowering: diagnostics, schedules, literal text, and the shape of the definition."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipegen.compiler import compile_checked
from pipegen.frontend import check_file
from pipegen.targets.asl import Jsonata, plain_string
from tests.hostile import BENIGN, HOSTILE, literal_value
from tests.stepfunctions.asl import compile_text, hostile_spec, load, strings, validate, with_targets

EKS = {"name": "ml", "endpoint": "https://eks.example.com", "certificate_authority": "Q0E="}


# ---- diagnostics -----------------------------------------------------------------------------------


def test_local_backend_is_located(cli: Any, tmp_path: Path) -> None:
    result = cli("compile", "specs/demo.yaml", "-t", "stepfunctions", "-o", str(tmp_path))
    assert result.code == 1
    assert (
        "specs/demo.yaml:32:16: error[PG602]: target 'stepfunctions' cannot run step 'train' on backend type 'local'"
        in result.err
    )
    assert "hint: AWS Step Functions supports backend types: aws_batch, sagemaker, kubernetes" in result.err
    assert not any(tmp_path.iterdir())


def test_secret_in_a_batch_command_is_located(tmp_path: Path) -> None:
    text = Path("specs/pricing.yaml").read_text().replace('"${params.max_depth}"', '"${secret.token}"')
    outputs, diags = compile_text(text, tmp_path)
    assert outputs == {}
    assert any(
        re.search(r"spec\.yaml:\d+:\d+: error\[PG602\]: target 'stepfunctions' cannot put \$\{secret\.token\}", d)
        for d in diags
    ), diags


def test_kubernetes_needs_the_eks_cluster(tmp_path: Path) -> None:
    text = re.sub(r"targets:\n(  .*\n|\n)*?(?=notify:)", "", Path("specs/feed-ranking.yaml").read_text())
    assert "eks_cluster" not in text
    _, diags = compile_text(text, tmp_path)
    assert any("error[PG604]: target 'stepfunctions' needs the EKS cluster" in d for d in diags), diags


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 2 * * *", "cron(0 2 * * ? *)"),
        ("30 6 * * 1-5", "cron(30 6 ? * MON,TUE,WED,THU,FRI *)"),
        ("0 0 * * 0", "cron(0 0 ? * SUN *)"),
        ("0 0 * * 7", "cron(0 0 ? * SUN *)"),
        ("*/15 * 1 * *", "cron(*/15 * 1 * ? *)"),
        ("0 0 1 * 1", None),
    ],
)
def test_cron_becomes_eventbridge_cron(cron: str, expected: str | None) -> None:
    from pipegen.targets.eventbridge import aws_cron

    assert aws_cron(cron) == expected


def test_unexpressible_schedule_and_catchup(tmp_path: Path) -> None:
    base = Path("specs/pricing.yaml").read_text()
    _, diags = compile_text(base.replace('schedule: "@daily"', 'schedule: "0 0 1 * 1"'), tmp_path)
    assert any("error[PG602]: target 'stepfunctions' cannot schedule '0 0 1 * 1'" in d for d in diags), diags
    outputs, diags = compile_text(
        base.replace('schedule: "@daily"', "schedule: {cron: '@daily', catchup: true}"), tmp_path
    )
    assert outputs, diags
    assert any("warning[PG702]: target 'stepfunctions' does not backfill" in d for d in diags), diags


def test_schedule_starts_the_state_machine_with_the_scheduled_time(tmp_path: Path) -> None:
    text = with_targets(
        Path("specs/pricing.yaml").read_text(),
        state_machine_arn="arn:aws:states:us-east-1:111122223333:stateMachine:pricing",
        scheduler_role_arn="arn:aws:iam::111122223333:role/scheduler",
    )
    outputs, _ = compile_text(text, tmp_path)
    schedule = json.loads(outputs["stepfunctions/pricing.schedule.json"])
    assert schedule["ScheduleExpression"] == "cron(0 0 * * ? *)"
    assert schedule["Target"]["Arn"] == "arn:aws:states:us-east-1:111122223333:stateMachine:pricing"
    assert schedule["Target"]["RoleArn"] == "arn:aws:iam::111122223333:role/scheduler"
    assert json.loads(schedule["Target"]["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}


def test_targets_lists_step_functions(cli: Any) -> None:
    result = cli("targets")
    assert result.code == 0
    assert "stepfunctions" in result.out
    assert "batch:submitJob.sync" in result.out and "eks:runJob.sync" in result.out


# ---- literal text ----------------------------------------------------------------------------------


def _blank(doc: Any, s: str) -> Any:
    """The definition with every string that holds s (JSON-escaped or not) replaced by a marker."""
    # As written, as meant ($${ read as ${), as plain text escaped for the runtime (${ as $${), JSON-escaped.
    forms = {s, literal_value(s), s.replace("${", "$${")}
    forms |= {json.dumps(f, ensure_ascii=False)[1:-1] for f in forms}
    if isinstance(doc, dict):
        return {k: _blank(v, s) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_blank(v, s) for v in doc]
    if isinstance(doc, str) and any(f in doc for f in forms):
        return "<user text>"
    if isinstance(doc, str) and re.fullmatch(r"[0-9a-f]{64}", doc):
        return "<spec sha256>"
    return doc


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_hostile_strings_stay_string_values(language: str, tmp_path: Path) -> None:
    hostile, diags = compile_text(hostile_spec(HOSTILE, language), tmp_path, "hostile.yaml")
    assert hostile, diags
    doc = load(hostile["stepfunctions/hostile.asl.json"])
    # asl-validator's string patterns use '.', which stops at a line break (the service has no such
    # limit), so the validator sees the one-line variant; the structure check below ties the two.
    one_line = HOSTILE.replace("\n", " ")
    validated, _ = compile_text(hostile_spec(one_line, language), tmp_path, "one-line.yaml")
    path = tmp_path / "one-line.asl.json"
    path.write_text(validated["stepfunctions/hostile.asl.json"], encoding="utf-8")
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    benign, _ = compile_text(hostile_spec(BENIGN, language), tmp_path, "benign.yaml")
    # Same structure whatever the user text: no user text became a key, a path or a state.
    blank = _blank(doc, HOSTILE)
    assert blank == _blank(load(benign["stepfunctions/hostile.asl.json"]), BENIGN)
    assert blank == _blank(load(validated["stepfunctions/hostile.asl.json"]), one_line)

    pairs = strings(doc)
    if language == "JSONPath":
        # Only our own paths and intrinsics sit under keys ending in '.$'; user text never does.
        evaluated = [v for k, v in pairs if k.endswith(".$")]
        assert evaluated
        for value in evaluated:
            assert value.startswith(("$", "States.")) and "{" not in value and 'h"' not in value, value
    else:
        # A string holding '{%' is written as a JSONata string literal that reads back as the text.
        wrapped = [v for _, v in pairs if v.startswith('{% "')]
        assert wrapped
        written = {v for _, v in strings(yaml.safe_load(hostile_spec(HOSTILE, language)))}
        written |= {w.replace("${", "$${") for w in written} | {literal_value(w) for w in written}
        for value in wrapped:
            assert value.endswith(" %}")
            assert json.loads(value[3:-3]) in written, value
        plain = [v for _, v in pairs if "{%" in v and not v.startswith("{% ")]
        assert plain == [] or all(k == "Comment" for k, v in pairs if v in plain)
    # The user's strings are there, equal to what the spec says.
    values = {v for _, v in pairs}
    assert HOSTILE in values or "{% " + json.dumps(HOSTILE, ensure_ascii=False) + " %}" in values
    assert doc["Comment"].startswith(HOSTILE)


def test_skip_inside_a_branch_and_a_guard_after_it(tmp_path: Path) -> None:
    """A skip-evaluation in a branch ends its branch; a step after the Parallel checks the evaluation itself."""
    text = Path("specs/pricing.yaml").read_text().replace("on_fail: fail", "on_fail: skip")
    text = text.replace(
        "  - name: promote\n",
        "  - name: report\n    after: [train]\n    task: {backend: batch-cpu, command: [report]}\n"
        "  - name: final\n    after: [ship, report]\n    task: {backend: batch-cpu, command: [final]}\n"
        "  - name: ship\n    after: [quality]\n",
    )
    outputs, diags = compile_text(text, tmp_path)
    assert outputs, diags
    doc = load(outputs["stepfunctions/pricing.asl.json"])
    states = doc["States"]
    assert [n for n in states if "." not in n] == ["partition_ready", "train", "final"]
    # The training job goes on through its close state (closing.py), then to the Parallel.
    assert states["train.job"]["Next"] == "train.close"
    parallel = states["train.close"]["Next"]
    quality, report = states[parallel]["Branches"]
    # quality failing ends its branch (ship depends on it); report runs in the other branch regardless.
    assert quality["States"]["quality.passed"]["Default"] == f"{parallel}.0.end"
    assert "ship.enabled" not in quality["States"]
    assert report["StartAt"] == "report"
    # Only the verdict leaves the branch, and the join merges it into the state data.
    assert states[parallel]["ResultSelector"] == {
        "evaluations": {"quality": {"passed.$": "$[0].evaluations.quality.passed"}}
    }
    assert states[f"{parallel}.join"]["Next"] == "final.enabled"
    assert states["final.enabled"]["Choices"][0]["Variable"] == "$.evaluations.quality.passed"
    assert states["final.enabled"]["Default"] == "pipegen.done"
    assert states["pipegen.context"]["Parameters"]["evaluations"] == {"quality": {"passed": False}}
    path = tmp_path / "guard.asl.json"
    path.write_text(outputs["stepfunctions/pricing.asl.json"])
    assert validate(path).returncode == 0


def _many_jobs(n: int, arg: str = "${params.p}") -> str:
    steps = "".join(
        f"  - name: s{i}\n    task: {{backend: jobs, command: [run, {json.dumps(arg)}, part-{i}, '${{run.date}}']}}\n"
        for i in range(n)
    )
    return (
        "pipegen: 1\nname: big\nparams: {p: 1}\n"
        "backends:\n  jobs: {type: aws_batch, job_queue: q, job_definition: d}\n"
        f"defaults: {{retries: 2, retry_delay: 1m, backoff: exponential, max_retry_delay: 10m, timeout: 1h}}\nsteps:\n{steps}"
    )


def test_a_thousand_batch_steps_fit_in_one_upload(tmp_path: Path) -> None:
    """Commands with ${run.*} and ${params.X} are built by the state machine: no Lambda hop, small states."""
    outputs, diags = compile_text(_many_jobs(1000), tmp_path)
    assert outputs, diags
    text = outputs["stepfunctions/big.asl.json"]
    assert len(json.dumps(text).encode()) < 1_048_576 - 8_192
    states = load(text)["States"]
    assert len(states) == 1000 + 4  # three context states and Fail
    assert states["s7"]["Parameters"]["ContainerOverrides"]["Command.$"] == (
        "States.Array('run', States.Format('{}', $.pipegen.params.p), 'part-7', $.pipegen.run_date)"
    )
    assert states["s7"]["ResultPath"] is None


def test_a_definition_over_the_service_limit_is_a_diagnostic(tmp_path: Path) -> None:
    outputs, diags = compile_text(_many_jobs(2000), tmp_path)
    assert outputs == {}
    assert any(
        re.search(r"spec\.yaml:2:7: error\[PG602\]: .* the definition takes \d+ bytes, over the service's 1048576", d)
        for d in diags
    ), diags
    # Quotes double when the definition travels inside the request: under 1 MiB as a file, over as an upload.
    outputs, diags = compile_text(_many_jobs(1000, '"' * 150), tmp_path)
    assert outputs == {}
    assert any(
        re.search(r"the request that uploads it takes about \d+ bytes, over the service's 1048576", d) for d in diags
    )
    outputs, diags = compile_text(_many_jobs(50), tmp_path)
    assert outputs, diags


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(st.characters(blacklist_categories=["Cs"]), max_size=40),
    language=st.sampled_from(["JSONPath", "JSONata"]),
)
def test_any_text_stays_the_same_string(text: str, language: str, tmp_path: Path) -> None:
    """Whatever the text, the definition is JSON that holds it as one string value (or a JSONata literal of it)."""
    # YAML double-quoted: \u escapes for what YAML may not hold raw or reads as a line break (NEL, LS, PS).
    q = re.sub(
        "[\x7f-\x9f\u2028\u2029\ufffe\uffff]",
        lambda m: f"\\u{ord(m[0]):04x}",
        json.dumps(text.replace("${", "$${"), ensure_ascii=False),
    )
    spec = (
        "pipegen: 1\nname: anytext\n"
        "backends:\n  jobs: {type: aws_batch, job_queue: q, job_definition: d}\n"
        f"steps:\n  - name: t\n    task: {{backend: jobs, command: [x, {q}], env: {{A: {q}}}}}\n"
        f"targets:\n  stepfunctions: {{query_language: {language}}}\n"
    )
    outputs, diags = compile_text(spec, tmp_path)
    assert outputs, diags
    doc = load(outputs["stepfunctions/anytext.asl.json"])
    if language == "JSONPath" and not plain_string(text):
        # asl-validator refuses it inside a JSONPath list: the prepare Lambda renders the command from the
        # request's spec, one JSON string holding the spec's text as written (test_line_breaks runs it).
        spec = json.loads(doc["States"]["t"]["Parameters"]["Payload"]["args"]["spec_json"])
        written = text.replace("${", "$${")
        assert spec["command"] == ["x", written] and spec["env"] == {"A": written}
        return
    job = doc["States"]["t"][{"JSONPath": "Parameters", "JSONata": "Arguments"}[language]]["ContainerOverrides"]
    expected = Jsonata().literal(text) if language == "JSONata" else text
    assert job["Command"] == ["x", expected]
    assert job["Environment"] == [{"Name": "A", "Value": expected}]


def test_wait_loops_past_the_history_limit_are_a_located_error(tmp_path: Path) -> None:
    """A day of checks every 30 s is 2,881 checks of 11 events: over an execution's 25,000 events."""
    spec = tmp_path / "often.yaml"
    spec.write_text(
        "pipegen: 1\nname: often\nsteps:\n"
        "  - name: ready\n"
        "    gate: {check: partition_exists, path: 's3://b/p/', wait: {timeout: 24h, interval: 30s}}\n"
    )
    result = compile_checked(check_file(str(spec)), ["stepfunctions"])
    codes = [(d.code, d.location.line, d.location.column) for d in result.diagnostics]
    assert ("PG602", 5, 87) in codes, [d.format() for d in result.diagnostics]
    message = next(d.message for d in result.diagnostics if d.code == "PG602")
    assert "2881 checks of 11 history events" in message and "25000-event limit" in message
    spec.write_text(spec.read_text().replace("interval: 30s", "interval: 5m"))
    assert compile_checked(check_file(str(spec)), ["stepfunctions"]).ok


def test_history_counts_every_state_not_only_wait_loops(tmp_path: Path) -> None:
    """500 job steps write about 3,000 events: with a wait loop of 2,000 checks the run passes 25,000."""
    jobs = "".join(f"  - name: s{i}\n    task: {{backend: jobs, command: [run]}}\n" for i in range(500))
    text = (
        "pipegen: 1\nname: busy\nbackends:\n  jobs: {type: aws_batch, job_queue: q, job_definition: d}\nsteps:\n"
        "  - name: ready\n    gate: {check: partition_exists, path: 's3://b/p/', wait: {timeout: 19990s, interval: 10s}}\n"
        + jobs
    )
    _, diags = compile_text(text, tmp_path)
    assert any("error[PG602]" in d and "2000 checks of 11 history events" in d for d in diags), diags
    # Without the jobs the same loop fits.
    outputs, diags = compile_text(
        text.replace(jobs, "  - name: s0\n    task: {backend: jobs, command: [run]}\n"), tmp_path
    )
    assert outputs, diags
