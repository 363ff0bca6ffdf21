"""Runs a manifest's containers here, in DAG order, with the argv and env the manifest gives them.

No Argo controller can run on these machines, so this plays only the controller's substitution of the few
references pipegen writes (and fails on any other `{{`), and the kubelet's `$(VAR)` expansion; the containers'
processes are real (`python -m pipegen.runtime ...` against a real MLflow server). The one liberty: each
container's --output path (RESULT_PATH, the same in every pod) is moved to a directory of its own.

Substitution follows the controller (workflow/controller/dag.go, workflow/common/util.go SubstituteParams): a
DAG task's arguments are resolved with `tasks.*` in scope; the template it calls then gets its inputs' values,
one pass replaces the workflow's references in the whole template (input values included, so a value is read
again), and a second pass replaces `{{inputs.parameters.X}}`. A `tasks.*` reference inside a template, or a
`{{` a substituted value forms for the second pass, fails here as Argo would mis-run it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipegen.targets.argo.names import RESULT_PATH

_PARAM = r"workflow\.parameters\.([-\w]+)"
_RESULT_FIELD = re.compile(r"=jsonpath\(tasks\['([-\w]+)'\]\.outputs\.parameters\.result, '\$\.(\w+)'\)")
_TO_JSON = re.compile(rf"=toJson\((asInt\(|asFloat\()?{_PARAM}( == 'true')?\)?\)")
# runtime.param_json's form for a string parameter: its JSON with '$', '{' and '}' as \u escapes (expr's replace).
_ESCAPED_JSON = re.compile(
    rf"=replace\(replace\(replace\(toJson\({_PARAM}\), '\\u0024', '\\\\u0024'\), "
    r"'\\u007b', '\\\\u007b'\), '\\u007d', '\\\\u007d'\)"
)
# refs.kubelet_param: a parameter in a user container's args or env, every '$' doubled for the kubelet.
_KUBELET_PARAM = re.compile(rf"=replace\({_PARAM}, '\$', '\$\$'\)")
_INPUT = re.compile(r"inputs\.parameters\.([-\w]+)")


@dataclass
class Run:
    """One workflow run: its arguments, the values Kubernetes objects hold, and what each task did."""

    parameters: dict[str, str]
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    name: str = "hostile-run-1"
    # {{workflow.scheduledTime}}: set in runs a CronWorkflow starts; None leaves the text (a manual submit).
    scheduled_time: str | None = None
    results: dict[str, str] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def tag(self, tag: str, status: str, in_dag: bool = True) -> str:
        """What the controller substitutes for one `{{tag}}` (in a DAG task's fields, or else in a template)."""
        if not in_dag and ("tasks." in tag or "tasks[" in tag):
            raise AssertionError(f"Argo resolves {{{{{tag}}}}} only in a DAG task, not in the template it calls")
        if tag == "workflow.name":
            return self.name
        if tag == "workflow.status":
            return status
        if tag == "workflow.scheduledTime":
            return "{{workflow.scheduledTime}}" if self.scheduled_time is None else self.scheduled_time
        if m := re.fullmatch(_PARAM, tag):
            return self.parameters[m.group(1)]
        if m := re.fullmatch(r"tasks\.([-\w]+)\.outputs\.parameters\.result", tag):
            return self.results[m.group(1)]
        if m := _RESULT_FIELD.fullmatch(tag):
            return _text(json.loads(self.results[m.group(1)])[m.group(2)])
        if m := _TO_JSON.fullmatch(tag):
            cast, name, is_true = m.groups()
            raw = self.parameters[name]
            value: Any = raw == "true" if is_true else int(raw) if cast == "asInt(" else float(raw) if cast else raw
            return json.dumps(value)
        if m := _KUBELET_PARAM.fullmatch(tag):
            return self.parameters[m.group(1)].replace("$", "$$")
        if m := _ESCAPED_JSON.fullmatch(tag):
            escaped = json.dumps(self.parameters[m.group(1)])
            return escaped.replace("$", "\\u0024").replace("{", "\\u007b").replace("}", "\\u007d")
        raise AssertionError(f"Argo would not resolve {{{{{tag}}}}}")

    def substitute(self, text: str, status: str = "Running", in_dag: bool = True) -> str:
        """One pass over text, as fasttemplate does it: replaced values are not read again in this pass.

        In a template (in_dag False) `{{inputs.parameters.X}}` is left for the inputs pass, as Argo's first pass
        (allowUnresolved) leaves it.
        """

        def one(m: re.Match[str]) -> str:
            if not in_dag and _INPUT.fullmatch(m.group(1)):
                return m.group(0)
            return self.tag(m.group(1), status, in_dag)

        return re.sub(r"\{\{(.*?)\}\}", one, text)

    def template_text(self, text: str, inputs: dict[str, str], status: str) -> str:
        """Argo's two passes over a template string: the workflow's references, then the template's inputs."""

        def one(m: re.Match[str]) -> str:
            if m.group(1) == "workflow.scheduledTime" and self.scheduled_time is None:
                return m.group(0)  # left by the first pass (a manual submit), and by this one
            found = _INPUT.fullmatch(m.group(1))
            if found is None:
                raise AssertionError(f"a substituted value formed {m.group(0)!r}, which Argo would read again")
            return inputs[found.group(1)]

        return re.sub(r"\{\{(.*?)\}\}", one, self.substitute(text, status, in_dag=False))


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def kubelet(text: str, env: dict[str, str]) -> str:
    """The kubelet's expansion of `$(VAR)` (from the container's env) and `$$` in command, args and env values."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", one, text)


def run_task(
    run: Run,
    task: dict[str, Any],
    templates: dict[str, Any],
    workdir: Path,
    status: str = "Running",
    kill_after: float | None = None,
) -> int:
    """Run one DAG task: its arguments resolved in the DAG, then the template it calls with them as inputs."""
    arguments = {p["name"]: run.substitute(p["value"], status) for p in task.get("arguments", {}).get("parameters", [])}
    return run_template(run, templates[task["template"]], workdir, status, kill_after, task["name"], arguments)


def run_template(
    run: Run,
    template: dict[str, Any],
    workdir: Path,
    status: str = "Running",
    kill_after: float | None = None,
    name: str | None = None,
    arguments: dict[str, str] | None = None,
) -> int:
    """Run one container template as task `name` (default: the template's); its result goes to run.results[name].

    arguments: the task's resolved arguments, the template's inputs. kill_after: kill the process after that
    many seconds, as when a pod is evicted or its node lost (-9).
    """
    name = name or template["name"]
    declared = [p["name"] for p in template.get("inputs", {}).get("parameters", [])]
    assert sorted(declared) == sorted(arguments or {}), (declared, arguments)
    # Argo's first pass reads the input values too (SubstituteParams marshals the template with them).
    inputs = {k: run.substitute(v, status, in_dag=False) for k, v in (arguments or {}).items()}
    container = template["container"]
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = kubelet(run.template_text(entry["value"], inputs, status), env)
        else:
            source = entry["valueFrom"]
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                env[entry["name"]] = run.secrets[ref["name"]][ref["key"]]
            else:
                ref = source["configMapKeyRef"]
                env[entry["name"]] = run.config_maps[ref["name"]][ref["key"]]
    out = workdir / name / "result.json"
    texts = [*container["command"], *container.get("args", [])]
    argv = [kubelet(run.template_text(a, inputs, status), env) for a in texts]
    argv = [str(out) if a == RESULT_PATH else a for a in argv]
    run.argv[name] = argv
    # `python` in the runtime image is this environment's interpreter.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    full_env = {"PATH": path, "HOME": str(workdir), **env}
    try:
        done = subprocess.run(
            argv, env=full_env, cwd=workdir, capture_output=True, text=True, timeout=kill_after or 600
        )
    except subprocess.TimeoutExpired:
        if kill_after is None:
            raise
        return -9
    run.logs[name] = done.stdout + done.stderr
    if done.returncode == 0 and template.get("outputs"):
        run.results[name] = out.read_text()
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
    return done.returncode


def run_workflow(run: Run, doc: dict[str, Any], workdir: Path) -> str:
    """Run the DAG (tasks in order, `depends` and `when` honoured), then the exit handler; the workflow's status."""
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    status = _dag(run, templates[doc["spec"]["entrypoint"]], templates, workdir, "Running")
    exit_name = doc["spec"].get("onExit")
    if exit_name:
        _dag(run, templates[exit_name], templates, workdir, status)
    return status


def _dag(run: Run, dag: dict[str, Any], templates: dict[str, Any], workdir: Path, status: str) -> str:
    failed = False
    for task in dag["dag"]["tasks"]:  # pipegen lists tasks in dependency order
        terms = [t.strip().split(".") for t in task.get("depends", "").split("&&") if t.strip()]
        if any(run.phases.get(name) != phase for name, phase in terms):
            run.phases[task["name"]] = "Omitted"
            continue
        if "when" in task and _when(run.substitute(task["when"], status)) is False:
            run.phases[task["name"]] = "Skipped"
            continue
        code = run_task(run, task, templates, workdir, status)
        run.phases[task["name"]] = "Succeeded" if code == 0 else "Failed"
        failed = failed or code != 0
        _hooks(run, task, templates, workdir, status)
    return "Failed" if failed else "Succeeded"


def _hooks(run: Run, task: dict[str, Any], templates: dict[str, Any], workdir: Path, status: str) -> None:
    """The task's lifecycle hooks whose expression holds once it ended, each as a task of its own named
    <task>.hooks.<hook> (its arguments resolved in the DAG). A hook that fails leaves the DAG's outcome as it is
    (Argo ignores a Failed hook)."""
    for name, hook in sorted(task.get("hooks", {}).items()):
        if not _hook_holds(run, hook["expression"]):
            continue
        called = {"name": f"{task['name']}.hooks.{name}", **{k: v for k, v in hook.items() if k != "expression"}}
        code = run_task(run, called, templates, workdir, status)
        run.phases[called["name"]] = "Succeeded" if code == 0 else "Failed"


def _hook_holds(run: Run, expression: str) -> bool:
    """The form argo/closing.py writes: `tasks["x"].status == "Phase"` terms joined by `||` (expr in Argo)."""
    results = []
    for term in expression.split(" || "):
        m = re.fullmatch(r'tasks\["([-\w]+)"\]\.status == "(\w+)"', term)
        assert m is not None, f"Argo's expr would read {term!r}, which this executor does not"
        results.append(run.phases.get(m.group(1)) == m.group(2))
    return any(results)


def _when(text: str) -> bool:
    """The few `when` forms pipegen writes: `a == b` or `a != b`, joined by `&&` (govaluate in Argo)."""
    results = []
    for clause in text.split("&&"):
        op = "!=" if "!=" in clause else "=="
        left, right = (side.strip() for side in clause.split(op))
        results.append((left == right) == (op == "=="))
    return all(results)
