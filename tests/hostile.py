"""A spec with a hostile string in every free-text field, for the targets' escaping tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Quotes of every kind, triple quotes, backslashes, newlines, Jinja of every kind, a literal ${, unicode.
HOSTILE = (
    "h\"'\\ \"\"\" ''' \\n\n\t{{ conn.x.password }} {% if True %}x{% endif %} {# c #} $${HOME} ünï ✓ {{{ }}} \\x00"
)
# The same shape with harmless text: both hold '{{', so both take the same escaping paths.
BENIGN = "b {{ x }}"


def literal_value(text: str) -> str:
    """What a spec string means once `$${` is read as a literal `${`."""
    return text.replace("$${", "${")


def spec_text(s: str, param: str | None = None, image: str | None = None) -> str:
    """The hostile-fields spec with s in every free-text field (YAML double-quoted, JSON-escaped).

    param replaces s as the parameter default, for targets that refuse some defaults (kfp: line breaks);
    image replaces it as the container image (kfp refuses braces there: it reads them as placeholders).
    """
    import json

    q = json.dumps(s, ensure_ascii=False)
    qp = json.dumps(s if param is None else param, ensure_ascii=False)
    url = json.dumps("https://example.com/" + s, ensure_ascii=False)
    return f"""\
pipegen: 1
name: hostile
description: {q}
owner: {q}
tags: [{q}]
params:
  p: {qp}
mlflow:
  tracking_uri: {q}
  experiment: {q}
backends:
  pods:
    type: kubernetes
    image: {json.dumps(s if image is None else image, ensure_ascii=False)}
    namespace: {q}
    service_account: {q}
    node_selector: {{pool: {q}}}
    env: {{A_VAR: {q}}}
steps:
  - name: ready
    gate: {{check: partition_exists, path: {q}}}
  - name: prep
    task:
      backend: pods
      command: [{q}, "${{run.date}}", {json.dumps(s + "${params.p}", ensure_ascii=False)}]
      env: {{B_VAR: {q}, C_VAR: "${{run.date}}/{json.dumps(s, ensure_ascii=False)[1:-1]}"}}
  - name: train
    train:
      backend: pods
      command: [python, {q}]
      metrics: [m]
  - name: judge
    evaluate: {{run_of: train, thresholds: ["m > 0"]}}
  - name: ship
    promote: {{model: m, run_of: train, artifact: {q}, notify: [{{webhook: {url}}}]}}
notify:
  on_failure: [{{webhook: {url}}}]
"""


# ---- specs generated from the models: a hostile value in every string field ----------------------------------

# Every syntax an engine or a language might evaluate: Airflow's Jinja (and a block that would swallow the rest),
# KFP's placeholders (the whole executor input, an input of the task, the job's id), JSONPath and Step Functions
# intrinsics, the kubelet's $(VAR), AWS Batch's Ref::, a literal ${ (written $${), quotes, backslashes, a line
# break and a tab, non-ASCII text, and SQL quoting.
HOSTILE_TEXT = (
    "H\"'\\ \\n\n\t{{ 7*7 }}{{ var.value.HIDDEN }}{% raw %} {{$}} {{$.inputs.parameters['pipelinechannel--p']}} "
    "{{$.pipeline_job_uuid}} $.x States.Format('{}') $(HOME) Ref::x /kfp-workspace $${HOME} ' OR '1'='1 ünï ✓"
)
HOSTILE_LINE = HOSTILE_TEXT.replace("\n", " ").replace("\t", " ")
# What kfp can carry in a parameter default: its placeholders and workspace path, broken (it has no escape).
HOSTILE_KFP_DEFAULT = HOSTILE_LINE.replace("{{$", "{{ $").replace("/kfp-workspace", "kfp-workspace")
# What a field with a restricted syntax gets: the first of these its type accepts, most hostile first (the
# later ones are the plain values a pattern, enum-like check or range leaves).
CANDIDATES = (
    HOSTILE_TEXT,
    HOSTILE_LINE,
    "https://example.com/" + HOSTILE_LINE.replace(" ", "%20"),
    HOSTILE_KFP_DEFAULT,
    "R.-_1",
    "r.-1",
    "_R-1",
    "_R1",
    "r-1",
    "r_1",
    "m > 0",
    "0 2 * * *",
    "UTC",
    "1Gi",
    "1g",
    "1",
    "30m",
    "r",
    "r:r:1",  # a Maven coordinate (spark packages)
    # Ids with an AWS or release shape (spark platforms): the most hostile characters each shape allows.
    "arn:aws:iam::123456789012:role/R+=,.@_-/r",
    "j-R1",
    "us-east-1",
    "emr-7.1.0",
    "1.2.3",
)

_GET_FIELDS = "model_fields"


def choices(accepts: Callable[[str], bool], around: str | None = None) -> list[str]:
    """The candidates accepts() takes, most hostile first; with around (a skeleton's value), candidate + around
    before each candidate alone."""
    out = [t for c in CANDIDATES for t in ([c + around] if around is not None else []) + [c] if accepts(t)]
    assert out, "no candidate fits"
    return out


def pick(accepts: Callable[[str], bool], around: str | None = None) -> str:
    """The first of choices()."""
    return choices(accepts, around)[0]


# Where fill() put a candidate: the path in the spec, and the other candidates the schema takes there.
Leaves = dict[tuple[object, ...], list[str]]


def _accepts(model: Any, data: dict[str, Any], loc: tuple[object, ...]) -> bool:
    """Whether validating data as model reports no error at loc or inside it (other fields may be unfilled)."""
    from pydantic import ValidationError

    try:
        model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            at = tuple(error["loc"])
            # An error inside loc, or at a field enclosing it (a validator of a whole list); not the model's own.
            if at and (at[: len(loc)] == loc or loc[: len(at)] == at):
                return False
    return True


def _members(annotation: Any) -> list[Any]:
    """The types an annotation may hold: Annotated and Optional/Union unwrapped, None left out."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) if a is not type(None) for m in _members(a)]
    return [annotation]


def _is_model(t: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(t, type) and issubclass(t, BaseModel)


def holds_text(annotation: Any) -> bool:
    """Whether a value of this type holds strings anywhere (str itself, list or dict items or keys, Any)."""
    import typing

    for member in _members(annotation):
        origin = typing.get_origin(member)
        if member is str or member is Any:
            return True
        if origin in (list, dict) and any(holds_text(a) for a in typing.get_args(member)):
            return True
    return False


def string_fields(model: Any, seen: set[Any] | None = None) -> set[tuple[str, str]]:
    """(model, field) for every field holding text, in the model and every model it contains."""
    import typing

    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    found: set[tuple[str, str]] = set()
    for name, field in getattr(model, _GET_FIELDS).items():
        if holds_text(field.annotation):
            found.add((model.__name__, name))
        stack = list(_members(field.annotation))
        while stack:
            t = stack.pop()
            if _is_model(t):
                found |= string_fields(t, seen)
            else:
                stack += [m for a in typing.get_args(t) for m in _members(a)]
    return found


# Fields the skeletons below set and the filler leaves alone, with why: names other fields refer to (a hostile
# value the schema accepts is still a plain name, and they must agree), and keys the format fixes.
STRUCTURAL: dict[tuple[str, str], str] = {
    ("Spec", "name"): "names the output files the tests read (a pattern-checked name)",
    ("Spec", "params"): "the key is referred to as ${params.p}; its default is filled by the generator itself",
    ("Spec", "targets"): "keys are target names; each target's options model is filled",
    ("Step", "name"): "referred to by after/run_of",
    ("Step", "after"): "step names",
    ("Task", "backend"): "a backend name",
    ("Train", "backend"): "a backend name",
    ("Train", "metrics"): "referred to by thresholds and champion.metric",
    ("Evaluate", "run_of"): "a step name",
    ("Evaluate", "thresholds"): "metric names of the train step (a threshold is a name, an operator, a number)",
    ("Champion", "metric"): "a metric of the train step",
    ("Promote", "run_of"): "a step name",
}
# Optional fields a model allows only one of: filled only where a skeleton sets them.
ONLY_IF_GIVEN = {
    ("RowCountGate", "table"),
    ("RowCountGate", "query"),
    ("SparkBackend", "master"),  # spark-submit's alone (managed platforms refuse it)
    ("RayBackend", "address"),  # or a cluster made per run
}


def fill(
    model: Any,
    given: dict[str, Any],
    filled: set[tuple[str, str]],
    at: tuple[object, ...] = (),
    leaves: Leaves | None = None,
) -> dict[str, Any]:
    """given (a skeleton of the model) with every string field filled by pick(); records what it filled.

    at: where the model's data sits in the spec; leaves: receives each filled string's path and choices.
    """
    leaves = {} if leaves is None else leaves
    out = dict(given)
    for name, field in getattr(model, _GET_FIELDS).items():
        key = field.alias or name
        if (model.__name__, name) in STRUCTURAL or ((model.__name__, name) in ONLY_IF_GIVEN and key not in out):
            continue

        def trial(value: Any, key: str = key) -> dict[str, Any]:
            return {**out, key: value}

        value = _value(model, field.annotation, out.get(key), (key,), trial, filled, (*at, key), leaves)
        if value is not None:
            out[key] = value
            if holds_text(field.annotation):
                filled.add((model.__name__, name))
    return out


def _value(
    model: Any,
    annotation: Any,
    existing: Any,
    loc: tuple[object, ...],
    trial: Callable[[Any], dict[str, Any]],
    filled: set[tuple[str, str]],
    at: tuple[object, ...],
    leaves: Leaves,
) -> Any:
    """The filled value of one field (or item) at loc (at, in the spec); trial(value) is the model's data with it."""
    import typing

    members = _members(annotation)
    models = [m for m in members if _is_model(m)]
    if models:
        if not isinstance(existing, dict):
            return existing  # optional sections are filled where a skeleton opens them
        chosen = next((m for m in models if _discriminated(m, existing)), models[0])
        return fill(chosen, existing, filled, at, leaves)
    if str in members or Any in members:
        around = existing if isinstance(existing, str) else None
        leaves[at] = choices(lambda text: _accepts(model, trial(text), loc), around)
        return leaves[at][0]
    for member in members:
        origin, args = typing.get_origin(member), typing.get_args(member)
        if origin is list and (holds_text(args[0]) or any(_is_model(m) for m in _members(args[0]))):
            items = list(existing) if isinstance(existing, list) else [None]
            for i, item in enumerate(items):

                def in_list(value: Any, i: int = i, items: list[Any] = items) -> dict[str, Any]:
                    return trial([*items[:i], value, *items[i + 1 :]])

                items[i] = _value(model, args[0], item, (*loc, i), in_list, filled, (*at, i), leaves)
            return items
        if origin is dict and (holds_text(args[1]) or any(_is_model(m) for m in _members(args[1]))):
            if isinstance(existing, dict):
                entries = dict(existing)
            else:
                sample = "x" if args[1] is Any else pick(lambda text: True)
                entries = {pick(lambda text, s=sample: _accepts(model, trial({text: s}), (*loc, text, "[key]"))): None}
            for k, item in list(entries.items()):

                def in_dict(value: Any, k: str = k, entries: dict[str, Any] = entries) -> dict[str, Any]:
                    return trial({**entries, k: value})

                entries[k] = _value(model, args[1], item, (*loc, k), in_dict, filled, (*at, k), leaves)
            return entries
    return existing


def _discriminated(model: Any, data: dict[str, Any]) -> bool:
    """Whether data's discriminator (a Literal field such as type/check) names this union member."""
    import typing

    for name, field in getattr(model, _GET_FIELDS).items():
        if typing.get_origin(field.annotation) is typing.Literal and name in data:
            return data[name] in typing.get_args(field.annotation)
    return False


BACKEND_TYPES = ("kubernetes", "aws_batch", "sagemaker", "spark", "ray", "local")
# The other ways a backend type runs (spec.backend_variant; the plain type is spark-submit / a Ray address).
VARIANTS = ("spark.kubernetes", "spark.emr", "spark.emr_serverless", "spark.emr_on_eks", "spark.glue", "ray.cluster")


def _backend_skeleton(backend_type: str) -> dict[str, Any]:
    """A backend with its optional sections opened (Spark's driver and executors sizes); backend_type is a type
    or one of VARIANTS."""
    kind, _, variant = backend_type.partition(".")
    if kind == "spark":
        sizes: dict[str, Any] = {"driver": {}, "executors": {}}
        if variant:
            return {"type": "spark", "platform": variant, variant: {}, **sizes}
        return {"type": "spark", "master": "", **sizes}
    if kind == "ray":
        if variant:
            return {"type": "ray", "cluster": {"head": {}, "workers": [{}]}}
        return {"type": "ray", "address": ""}
    if kind == "kubernetes":
        return {"type": "kubernetes", "tolerations": [{}]}  # a list of models: opened here, as Ray's workers are
    return {"type": backend_type}


def skeleton(backend_type: str) -> dict[str, Any]:
    """The structure of a generated spec: every optional section opened, names and references fixed."""
    gate_wait = {"timeout": "1h", "interval": "5m"}
    return {
        "pipegen": 1,
        "name": "hostile",
        "schedule": {"cron": "0 2 * * *", "timezone": "UTC"},
        "params": {"p": None},
        "defaults": {},
        "mlflow": {"tracking_uri": None, "experiment": None},
        "backends": {"b": _backend_skeleton(backend_type)},
        "steps": [
            {"name": "g_path", "gate": {"check": "partition_exists", "path": "/${run.date}", "wait": gate_wait}},
            {"name": "g_fresh", "gate": {"check": "freshness", "path": "/${params.p}", "max_age": "1h"}},
            {"name": "g_table", "gate": {"check": "row_count", "connection": "sqlite://", "table": "t"}},
            {"name": "g_query", "gate": {"check": "row_count", "connection": "sqlite://", "query": "${params.p}"}},
            {"name": "g_sql", "gate": {"check": "sql", "connection": "sqlite://", "query": "${run.id}"}},
            {
                "name": "prep",
                "task": {
                    "backend": "b",
                    "command": [None, "${run.date}", "${params.p}", "${run.id}"],
                    "env": {"P_VAR": "${params.p}"},
                },
            },
            {
                "name": "fit",
                "train": {"backend": "b", "command": [None, "${params.p}"], "metrics": ["m"], "resources": {}},
            },
            {
                "name": "judge",
                "evaluate": {"run_of": "fit", "thresholds": ["m > 0"], "champion": {"metric": "m"}},
            },
            {"name": "ship", "promote": {"run_of": "fit", "notify": [{"webhook": None}]}},
        ],
        "notify": {"on_failure": [{"webhook": None}], "on_success": [{"webhook": None}]},
        "targets": {
            "airflow": {},
            "argo": {"mlflow_secret": {}, "mlflow_config_map": {}},
            "kfp": {"mlflow_secret": {}, "mlflow_config_map": {}},
            "prefect": {"work_pool": {}},
            "stepfunctions": {"eks_cluster": {}},
        },
    }


def hostile_spec(
    backend_type: str, param: str = HOSTILE_TEXT, target: str | None = None
) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """A spec (as data) with every string field filled, for one backend type; and the (model, field)s filled.

    param: the default of parameter p. target: also settle the values against that target's checks (below).
    """
    from pipegen.spec import Spec
    from pipegen.targets import available

    filled: set[tuple[str, str]] = set()
    leaves: Leaves = {}
    data = fill(Spec, skeleton(backend_type), filled, (), leaves)
    data["params"] = {"p": param}
    leaves[("params", "p")] = [param, *(c for c in CANDIDATES if c != param)]
    for name, options in available().items():
        at = ("targets", name)
        data["targets"][name] = fill(options.options_model, data["targets"].get(name, {}), filled, at, leaves)
    if target is not None:
        settle(data, leaves, target)
    return data, filled


def dump(data: dict[str, Any]) -> str:
    """Spec data as YAML text (JSON, which YAML reads as it is)."""
    import json

    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def _set(data: Any, path: tuple[object, ...], value: str) -> None:
    for key in path[:-1]:
        data = data[key]
    if isinstance(data, dict) and path[-1] not in data:  # a dict key: rename it, keeping its value
        raise KeyError(path)
    data[path[-1]] = value


def settle(data: dict[str, Any], leaves: Leaves, target: str) -> list[tuple[object, ...]]:
    """Give each value that a check of the spec or of target refuses (a located error) its next choice.

    The schema's own checks are only part of what pipegen accepts: e.g. Airflow limits tags to 100 characters
    and the KFP target refuses a line break in a parameter default. Returns the paths it changed.
    """
    from pipegen.compiler import compile_checked
    from pipegen.frontend import check_source
    from pipegen.loader import Source

    changed: list[tuple[object, ...]] = []
    for _ in range(50):
        checked = check_source(Source("hostile.yaml", dump(data)))
        result = compile_checked(checked, [target]) if checked.ok else None
        errors = [d for d in (result.diagnostics if result else checked.diagnostics) if d.severity.name == "ERROR"]
        if not errors:
            return changed
        where = {(d.location.line, d.location.column) for d in errors}
        moved = False
        for path, options in leaves.items():
            location = checked.smap.values.get(path)
            value = _get(data, path)
            if location is None or (location.line, location.column) not in where or value not in options:
                continue
            rest = options[options.index(value) + 1 :]
            if rest:
                _set(data, path, rest[0])
                changed.append(path)
                moved = True
        if not moved:
            return changed  # what is left is an error of the structure (e.g. a backend the target lacks)
    return changed


def _get(data: Any, path: tuple[object, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def hostile_spec_text(backend_type: str, param: str = HOSTILE_TEXT, target: str | None = None) -> str:
    """hostile_spec as YAML text."""
    return dump(hostile_spec(backend_type, param, target)[0])


BENIGN_TEXT = "b {{ x }}"


def benign_twin(data: Any) -> Any:
    """The same spec with the hostile texts replaced by a benign one (keys too), for AST-shape comparisons."""
    if isinstance(data, dict):
        return {benign_twin(k): benign_twin(v) for k, v in data.items()}
    if isinstance(data, list):
        return [benign_twin(v) for v in data]
    if isinstance(data, str):
        url = CANDIDATES[2]
        return (
            data.replace(url, "https://example.com/" + BENIGN_TEXT.replace(" ", "%20"))
            .replace(HOSTILE_TEXT, BENIGN_TEXT)
            .replace(HOSTILE_LINE, BENIGN_TEXT)
            .replace(HOSTILE_KFP_DEFAULT, BENIGN_TEXT)
        )
    return data
