"""A lint of what Argo's API models cannot see, after Argo's own validate.go: names, templates and `depends`
targets that exist, lifecycle hooks' templates and expressions, `{{...}}` references that resolve, cron and
timezone, enum values, and the kubelet's `$(`.

Each rule returns messages (empty when the manifest is clean); tests/argo/test_lint.py breaks a manifest per rule.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Iterator
from typing import Any

import jsonschema
from croniter import croniter

from tests.argo.conditions import BadCondition, parse

# validate.go: template, task and parameter names.
NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
PARAM_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")
MAX_NAME = 128
MAX_CRON_NAME = 52
RETRY_POLICIES = {"Always", "OnFailure", "OnError", "OnTransientError"}
CONCURRENCY = {"Allow", "Forbid", "Replace"}
DEPENDS_TERM = re.compile(
    r"^([a-zA-Z0-9][-a-zA-Z0-9]*)\.(Succeeded|Failed|Errored|Skipped|Omitted|Daemoned|AnySucceeded|AllFailed)$"
)
# A lifecycle hook's expression term, as argo/closing.py writes it (phases: Argo's NodePhase values).
HOOK_TERM = re.compile(
    r'tasks\["([a-zA-Z0-9][-a-zA-Z0-9]*)"\]\.status == "(Pending|Running|Succeeded|Skipped|Failed|Error|Omitted)"'
)
# The kubelet expands $(VAR) in a container's command, args and env values; `$$` is a literal `$`.
KUBELET = re.compile(r"\$(\$|\([A-Za-z_][A-Za-z0-9_.-]*\))")
# The references pipegen.k8s.distributed writes for a multi-node step's nodes (torchrun's flags, MASTER_ADDR from the
# Job's or JobSet's name): the kubelet is meant to expand these, in the builder's own words only (spec text has '$$').
RENDEZVOUS = {f"$({v})" for v in ("NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "JOB_NAME", "JOBSET_NAME")}
# {{workflow.uid}} as Argo gives it: a UUID.
UID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def tags(text: str) -> Iterator[str]:
    """Every `{{...}}` Argo would substitute in text, as fasttemplate reads it (each `{{` to the next `}}`)."""
    start = text.find("{{")
    while start != -1:
        end = text.find("}}", start + 2)
        if end == -1:
            yield text[start:]
            return
        yield text[start + 2 : end]
        start = text.find("{{", end + 2)


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, string) for every string value (Argo substitutes in all of them)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{path}[{i}]")


def lint(doc: dict[str, Any], template_doc: dict[str, Any] | None = None) -> list[str]:
    """Every problem of one document (a CronWorkflow is checked against the WorkflowTemplate it references)."""
    if doc["kind"] == "CronWorkflow":
        return list(_cron(doc, template_doc))
    return [*_templates(doc), *_references(doc), *_kubelet(doc), *_resources(doc)]


def _templates(doc: dict[str, Any]) -> Iterator[str]:
    spec = doc["spec"]
    names = [t["name"] for t in spec["templates"]]
    for name in names:
        if not NAME.match(name) or len(name) > MAX_NAME:
            yield f"template name '{name}' is not a valid Argo name"
    if len(set(names)) != len(names):
        yield "template names are not unique"
    for ref in (spec.get("entrypoint"), spec.get("onExit")):
        if ref is not None and ref not in names:
            yield f"template '{ref}' does not exist"
    for p in spec.get("arguments", {}).get("parameters", []):
        if not PARAM_NAME.match(p["name"]):
            yield f"parameter name '{p['name']}' is not valid"
    for template in spec["templates"]:
        retry = template.get("retryStrategy")
        if retry is not None and retry.get("retryPolicy") not in RETRY_POLICIES:
            yield f"template '{template['name']}': retryPolicy '{retry.get('retryPolicy')}' is not one of Argo's"
        tasks = template.get("dag", {}).get("tasks", [])
        task_names = [t["name"] for t in tasks]
        if len(set(task_names)) != len(task_names):
            yield f"template '{template['name']}': task names are not unique"
        for task in tasks:
            if not NAME.match(task["name"]):
                yield f"task name '{task['name']}' is not a valid Argo name"
            if task["template"] not in names:
                yield f"task '{task['name']}' uses template '{task['template']}', which does not exist"
            yield from _hooks(task, task_names, names)
            depends = task.get("depends")
            if depends is None:
                continue
            for term in (t.strip() for t in depends.split("&&")):
                m = DEPENDS_TERM.match(term)
                if m is None:
                    yield f"task '{task['name']}': depends term '{term}' is not <task>.<result>"
                elif m.group(1) not in task_names:
                    yield f"task '{task['name']}' depends on '{m.group(1)}', which is not a task of its DAG"
        yield from _acyclic(template["name"], tasks)


def _hooks(task: dict[str, Any], task_names: list[str], names: list[str]) -> Iterator[str]:
    """A task's lifecycle hooks: a template that exists, and an expression over task phases of its DAG (the form
    pipegen writes; Argo's validate.go requires an expression for every hook but `exit`)."""
    for name, hook in task.get("hooks", {}).items():
        where = f"task '{task['name']}': hook '{name}'"
        if not NAME.match(name):
            yield f"{where} is not a valid Argo name"
        if hook.get("template") not in names:
            yield f"{where} uses template '{hook.get('template')}', which does not exist"
        if name == "exit":
            continue
        terms = hook.get("expression", "").split(" || ")
        for term in terms:
            m = HOOK_TERM.fullmatch(term)
            if m is None:
                yield f'{where}: expression term \'{term}\' is not tasks["<task>"].status == "<phase>"'
            elif m.group(1) not in task_names:
                yield f"{where} reads task '{m.group(1)}', which is not a task of its DAG"


def _acyclic(template: str, tasks: list[dict[str, Any]]) -> Iterator[str]:
    edges = {
        t["name"]: [DEPENDS_TERM.match(x.strip()) for x in t.get("depends", "").split("&&") if x.strip()] for t in tasks
    }
    graph = {n: {m.group(1) for m in ms if m} for n, ms in edges.items()}
    done: set[str] = set()
    for start in graph:
        stack, seen = [start], set()
        while stack:
            node = stack.pop()
            for up in graph.get(node, ()):
                if up == start:
                    yield f"template '{template}': task '{start}' depends on itself through a cycle"
                    stack = []
                    break
                if up not in seen and up not in done:
                    seen.add(up)
                    stack.append(up)
        done.add(start)


def _allowed_tags(doc: dict[str, Any], template: dict[str, Any] | None) -> list[re.Pattern[str]]:
    """The references Argo resolves in a DAG task's fields (template None) or inside one template.

    validate.go resolves a leaf template's `{{...}}` against its inputs and the workflow's globals only: a
    `tasks.*` reference there fails validation (an expression's is left unresolved at run time). A DAG task's
    arguments and `when` also see the outputs of the DAG's tasks.
    """
    params = [re.escape(p["name"]) for p in doc["spec"].get("arguments", {}).get("parameters", [])]
    param = "(?:" + "|".join(params) + ")" if params else "(?!)"
    allowed = [
        re.compile(r"workflow\.(?:name|status|scheduledTime|uid)"),
        re.compile(rf"workflow\.parameters\.{param}"),
        re.compile(rf"=toJson\((?:asInt\(|asFloat\()?workflow\.parameters\.{param}(?: == 'true'|\))?\)?"),
        # refs.kubelet_param: a parameter in a user container's args or env, '$' doubled for the kubelet.
        re.compile(rf"=replace\(workflow\.parameters\.{param}, '\$', '\$\$'\)"),
        # runtime.param_json for a string: its JSON with the three characters as \u escapes.
        re.compile(
            rf"=replace\(replace\(replace\(toJson\(workflow\.parameters\.{param}\), '\\u0024', '\\\\u0024'\), "
            r"'\\u007b', '\\\\u007b'\), '\\u007d', '\\\\u007d'\)"
        ),
    ]
    if template is not None:
        inputs = [re.escape(p["name"]) for p in template.get("inputs", {}).get("parameters", [])]
        if inputs:
            allowed.append(re.compile(r"inputs\.parameters\.(?:" + "|".join(inputs) + ")"))
        if "resource" in template:
            allowed.append(_manifest_expression(param, inputs))
        return allowed
    outputs = {t["name"] for t in doc["spec"]["templates"] if t.get("outputs")}
    tasks = [t for tm in doc["spec"]["templates"] for t in tm.get("dag", {}).get("tasks", [])]
    with_result = [re.escape(t["name"]) for t in tasks if t["template"] in outputs]
    task = "(?:" + "|".join(with_result) + ")" if with_result else "(?!)"
    return [
        *allowed,
        re.compile(rf"tasks\.{task}\.outputs\.parameters\.result"),
        re.compile(rf"=jsonpath\(tasks\['{task}'\]\.outputs\.parameters\.result, '\$\.[a-z_]+'\)"),
    ]


def _manifest_expression(param: str, inputs: list[str]) -> re.Pattern[str]:
    """argo/manifests.py's form: toJson over a sum of escaped literals, parameters (with replace for the kubelet
    and the shell), the workflow's name and the template's inputs."""
    value = rf"(?:workflow\.parameters\.{param}|workflow\.name"
    value += (r"|inputs\.parameters\['(?:" + "|".join(inputs) + r")'\])") if inputs else ")"
    literal = r"'(?:[A-Za-z0-9 ]|\\u[0-9a-f]{4}|\\U[0-9a-f]{8})*'"
    kubelet = rf"replace\({value}, '\$', '\$\$'\)"
    shell = rf"replace\(replace\({value}, {literal}, {literal}\), '\$', '\$\$'\)"
    piece = f"(?:{literal}|{shell}|{kubelet}|{value})"
    return re.compile(rf"=toJson\({piece}(?: \+ {piece})*\)")


def _references(doc: dict[str, Any]) -> Iterator[str]:
    """Every `{{...}}` is one of the references Argo resolves where it stands; every input is passed."""
    spec = doc["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    in_dag = _allowed_tags(doc, None)
    checked: list[tuple[str, str, list[re.Pattern[str]]]] = []
    for path, text in strings(spec.get("arguments", {}), ".arguments"):
        checked.append((path, text, in_dag))
    for i, template in enumerate(spec["templates"]):
        if "dag" in template:
            for j, task in enumerate(template["dag"]["tasks"]):
                checked += [(p, t, in_dag) for p, t in strings(task, f".templates[{i}].dag.tasks[{j}]")]
                called = templates.get(task["template"], {})
                declared = sorted(p["name"] for p in called.get("inputs", {}).get("parameters", []))
                given = sorted(p["name"] for p in task.get("arguments", {}).get("parameters", []))
                if declared != given:
                    yield f"task '{task['name']}' passes {given} to template '{task['template']}', which takes {declared}"
                for name, hook in task.get("hooks", {}).items():
                    called = templates.get(hook.get("template", ""), {})
                    declared = sorted(p["name"] for p in called.get("inputs", {}).get("parameters", []))
                    given = sorted(p["name"] for p in hook.get("arguments", {}).get("parameters", []))
                    if declared != given:
                        yield f"hook '{name}' of task '{task['name']}' passes {given} to '{hook.get('template')}', which takes {declared}"
        else:
            allowed = _allowed_tags(doc, template)
            checked += [(p, t, allowed) for p, t in strings(template, f".templates[{i}]")]
    for path, text, allowed in checked:
        for tag in tags(text):
            if not any(p.fullmatch(tag) for p in allowed):
                yield f"{path}: '{{{{{tag}}}}}' is not a reference Argo resolves here"


def _kubelet(doc: dict[str, Any]) -> Iterator[str]:
    """No `$(VAR)` the kubelet would expand in a container's command, args or env values, or in a task's arguments
    (a template's inputs, which land in them)."""
    for template in doc["spec"]["templates"]:
        for task in template.get("dag", {}).get("tasks", []):
            calls = [task, *task.get("hooks", {}).values()]
            for p in [p for call in calls for p in call.get("arguments", {}).get("parameters", [])]:
                for m in KUBELET.finditer(p["value"]):
                    if m.group(1) != "$":
                        yield f"task '{task['name']}': argument '{p['name']}' holds '{m.group(0)}' for the kubelet"
        container = template.get("container")
        if container is None:
            continue
        texts = [*container.get("command", []), *container.get("args", [])]
        texts += [e["value"] for e in container.get("env", []) if "value" in e]
        for text in texts:
            for m in KUBELET.finditer(text):
                if m.group(1) != "$":
                    yield f"template '{template['name']}': the kubelet expands '{m.group(0)}'"


def _resources(doc: dict[str, Any]) -> Iterator[str]:
    """Resource templates: create an object the workflow owns, in its namespace, which its API accepts once Argo
    has substituted the manifest (sample values here); no `$(VAR)` the kubelet would expand in its pods."""
    from tests.argo.expressions import substitute

    params = {p["name"]: "P" for p in doc["spec"].get("arguments", {}).get("parameters", [])}
    for template in doc["spec"]["templates"]:
        resource = template.get("resource")
        if resource is None:
            continue
        name = template["name"]
        if resource.get("action") != "create" or resource.get("setOwnerReference") is not True:
            yield f"template '{name}': a step's object is created and owned by the workflow"
        inputs = {p["name"]: "I" for p in template.get("inputs", {}).get("parameters", [])}
        scope = {"workflow.parameters": params, "workflow.name": "W", "workflow.uid": UID, "inputs.parameters": inputs}
        try:
            obj = json.loads(substitute(resource["manifest"], scope))
            validate_object(obj)
        # strict.Invalid and json's errors are ValueErrors; kubernetes-validate raises jsonschema's ValidationError.
        except (ValueError, KeyError, AssertionError, jsonschema.ValidationError) as exc:
            yield f"template '{name}': the manifest is not an object its API accepts: {exc}"
            continue
        # A Service has no status to wait for: its template ends once it is created (a multi-node step's, before
        # the Job that uses it). Every other object is waited for.
        if obj["kind"] != "Service" and (not resource.get("successCondition") or not resource.get("failureCondition")):
            yield f"template '{name}': without both conditions the step waits for nothing or forever"
        for key in [k for k in ("successCondition", "failureCondition") if resource.get(k)]:
            try:
                parse(resource[key])
            except BadCondition as exc:
                yield f"template '{name}': {key} is not what Argo's executor parses: {exc}"
        if obj["metadata"].get("namespace") != doc["metadata"].get("namespace"):
            yield f"template '{name}': an owned object must live in the workflow's namespace"
        for path, text in _pod_texts(obj):
            for m in KUBELET.finditer(text):
                if m.group(1) != "$" and m.group(0) not in RENDEZVOUS:
                    yield f"template '{name}': the kubelet expands '{m.group(0)}' in {path}"


def validate_object(obj: dict[str, Any]) -> None:
    """The strict validator of the object's kind: core kinds (Job, Service) through kubernetes-validate, a JobSet
    through the kubeflow-trainer-api models' round trip (tests/k8s/test_distributed.py), the custom resources of
    Spark and Ray steps through tests/k8s/strict.py."""
    from tests.k8s.strict import validate
    from tests.k8s.test_distributed import validate as validate_nodes

    (validate_nodes if obj["kind"] in ("Job", "Service", "JobSet") else validate)(obj)


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Job's or a JobSet's pods."""
    if obj["kind"] == "Job":
        return obj["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]
    jobs = [r["template"]["spec"]["template"]["spec"] for r in obj["spec"]["replicatedJobs"]]
    return [c for pod in jobs for c in pod["containers"]]


def _pod_texts(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The object's texts that become a container's args or env values, which the kubelet reads."""
    spec = obj["spec"]
    if obj["kind"] == "Service":
        return
    if obj["kind"] in ("Job", "JobSet"):
        for container in _containers(obj):
            yield from (("command", c) for c in container.get("command", []))
            yield from (("args", a) for a in container.get("args", []))
            yield from (("env", e["value"]) for e in container.get("env", []) if "value" in e)
        return
    if obj["kind"] == "SparkApplication":
        yield "mainApplicationFile", spec["mainApplicationFile"]
        yield from (("arguments", a) for a in spec.get("arguments", []))
        for pod in ("driver", "executor"):
            yield from ((f"{pod}.env", e["value"]) for e in spec[pod].get("env", []) if "value" in e)
        return
    yield "entrypoint", spec["entrypoint"]
    cluster = spec["rayClusterSpec"]
    for group in [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]:
        for container in group["template"]["spec"]["containers"]:
            yield from (("env", e["value"]) for e in container.get("env", []) if "value" in e)


def _cron(doc: dict[str, Any], template_doc: dict[str, Any] | None) -> Iterator[str]:
    spec = doc["spec"]
    if len(doc["metadata"]["name"]) > MAX_CRON_NAME:
        yield f"CronWorkflow name '{doc['metadata']['name']}' is longer than {MAX_CRON_NAME} characters"
    if "schedule" in spec:
        yield "Argo 4 has no `schedule`: use `schedules`"
    for cron in spec.get("schedules", []):
        if not croniter.is_valid(cron) or len(cron.split()) != 5:
            yield f"schedule '{cron}' is not a five-field cron"
    zone = spec.get("timezone")
    if zone is not None and zone not in zoneinfo.available_timezones():
        yield f"timezone '{zone}' is not an IANA timezone"
    if spec.get("concurrencyPolicy", "Allow") not in CONCURRENCY:
        yield f"concurrencyPolicy '{spec.get('concurrencyPolicy')}' is not one of Argo's"
    ref = spec["workflowSpec"].get("workflowTemplateRef", {}).get("name")
    if template_doc is not None and ref != template_doc["metadata"]["name"]:
        yield f"workflowTemplateRef '{ref}' is not the WorkflowTemplate '{template_doc['metadata']['name']}'"
    if template_doc is not None:
        known = {p["name"] for p in template_doc["spec"].get("arguments", {}).get("parameters", [])}
        for p in spec["workflowSpec"].get("arguments", {}).get("parameters", []):
            if p["name"] not in known:
                yield f"argument '{p['name']}' is not a parameter of the WorkflowTemplate"


def lint_manifest(docs: list[dict[str, Any]]) -> list[str]:
    """Every problem of a manifest: its WorkflowTemplate, then its CronWorkflow against it."""
    template = docs[0]
    return [p for d in docs for p in lint(d, template)]
