"""The JSON Schema of spec format v1, for editors and CI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from pipegen import spec
from pipegen.diagnostics import CODES
from pipegen.schedule import PRESETS
from pipegen.spec import STEP_KINDS, Limit, Spec
from pipegen.targets.base import Target

SCHEMA_ID = "https://pipegen.dev/schema/pipegen-v1.schema.json"

# The patterns below are read by two regex engines: ECMA-262 with the u flag (editors, as JSON Schema says)
# and Python's re (jsonschema in the tests). They stick to syntax both read alike, and never reject a value
# pipegen accepts. Whitespace is what Python's str.split() and str.strip() skip; JavaScript's \s lacks a few.
_WS = r"[\s\x1c-\x1f\x85]"
_NOT_WS = r"[^\s\x1c-\x1f\x85]"
# A ${...} reference as pipegen.expr reads it: the text up to the first '}', stripped, is namespace.name.
_REF = (
    rf"\$\{{{_WS}*(?:params\.[a-z_][a-z0-9_]*|run\.(?:date|id)|env\.[A-Za-z_][A-Za-z0-9_]*"
    rf"|secret\.[A-Za-z][A-Za-z0-9_-]*){_WS}*\}}"
)
# Any text; each '$' is literal, or starts '$${' (a literal '${'), or starts a reference.
_TEMPLATE = rf"^(?:[^$]|\$(?!\$?\{{)|\$\$\{{|{_REF})*$"
# A preset, or five fields (croniter judges the fields themselves: ranges, names, steps).
_CRON = rf"^{_WS}*(?:(?:{'|'.join(PRESETS)})|(?!@){_NOT_WS}+(?:{_WS}+{_NOT_WS}+){{4}}){_WS}*$"
_THRESHOLD = (
    rf"^{_WS}*[A-Za-z_][A-Za-z0-9_./-]*{_WS}*(?:>=|<=|==|!=|>|<){_WS}*"
    rf"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?{_WS}*$"
)


def _hint(code: str) -> str:
    return CODES[code].hint


# What each custom validator of the spec models checks, said in JSON Schema as far as JSON Schema can.
# (Timezones are left out: the IANA list is data of the machine's tzdata, not structure.)
_VALIDATORS: dict[Callable[..., Any], JsonSchemaValue] = {
    spec._check_template: {"pattern": _TEMPLATE, "patternErrorMessage": "invalid ${...} expression; " + _hint("PG208")},
    spec._check_duration: {"minLength": 1, "patternErrorMessage": _hint("PG205")},
    spec._check_cron: {"pattern": _CRON, "patternErrorMessage": _hint("PG206")},
    spec._check_threshold: {"pattern": _THRESHOLD, "patternErrorMessage": _hint("PG207")},
    spec._check_alias: {
        "pattern": r"^(?!latest$)(?![vV]\d+$)[A-Za-z_][A-Za-z0-9_-]*$",
        "patternErrorMessage": "an MLflow alias: a letter or '_', then letters, digits, '_' or '-'; not 'latest' or 'v<N>'",
    },
    spec._check_url: {"pattern": r"^(?:https?://|\$\{)", "patternErrorMessage": "an http(s) URL"},
}

# Durations that must be longer than zero (their limit in pipegen.spec.LIMITS starts above 0); retry delays may be 0s.
_POSITIVE = {"pattern": "^(?![0dhms]*$)", "patternErrorMessage": "a duration longer than zero; " + _hint("PG205")}


def _limit_schema(function: Any) -> list[JsonSchemaValue]:
    """What a bounded field's validator (pipegen.spec.limits) adds: its range in words, and zero refused."""
    limit = getattr(function, "limit", None)
    if not isinstance(limit, Limit):
        return []
    # An upper bound on a duration is arithmetic over its parts, beyond what a pattern can say: it is described.
    out: list[JsonSchemaValue] = [{"description": f"{limit.range} ({limit.why})"}]
    if limit.kind == "duration" and limit.low > 0:
        out.append(_POSITIVE)
    return out


def _present(key: str, kind: str) -> JsonSchemaValue:
    """Key is there and not null (a JSON Schema `required` alone would let `key: null` count)."""
    return {"required": [key], "properties": {key: {"type": kind}}}


# The models' own validators (model_validator), said in JSON Schema.
_MODEL_RULES: dict[type[BaseModel], JsonSchemaValue] = {
    spec.Step: {"oneOf": [_present(kind, "object") for kind in STEP_KINDS]},
    spec.RowCountGate: {"oneOf": [_present("table", "string"), _present("query", "string")]},
    spec.Evaluate: {
        "anyOf": [
            {"required": ["thresholds"], "properties": {"thresholds": {"minItems": 1}}},
            _present("champion", "object"),
        ]
    },
}


def _conjoin(schemas: list[JsonSchemaValue]) -> JsonSchemaValue:
    """One schema that holds where all of them hold: merged, and a part whose keywords clash goes under allOf."""
    out: JsonSchemaValue = {}
    clashing: list[JsonSchemaValue] = []
    for part in schemas:
        if any(key in out and out[key] != value for key, value in part.items()):
            clashing.append(part)
        else:
            out.update(part)
    if clashing:
        out["allOf"] = [*out.get("allOf", []), *clashing]
    return out


class _Generator(GenerateJsonSchema):
    """pydantic's generator, plus the checks pydantic cannot see inside validator functions."""

    def chain_schema(self, schema: core_schema.ChainSchema) -> JsonSchemaValue:
        # pydantic keeps only the first step; every step validates, so the schema is all of them
        # (this keeps the name and duration patterns that follow a validator function).
        if self.mode != "validation":
            return super().chain_schema(schema)
        return _conjoin([self.generate_inner(step) for step in schema["steps"]])

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        out = super().dict_schema(schema)
        # pydantic writes a key pattern as patternProperties, which lets any other key through with any value.
        if "patternProperties" in out:
            ((pattern, values),) = out.pop("patternProperties").items()
            out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": pattern}
            out["additionalProperties"] = values
        return out

    def function_after_schema(self, schema: core_schema.AfterValidatorFunctionSchema) -> JsonSchemaValue:
        out = super().function_after_schema(schema)
        function = schema["function"]["function"]
        extra = _VALIDATORS.get(function)
        return _conjoin([out, extra] if extra else [out, *_limit_schema(function)])

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        out = super().function_before_schema(schema)
        return _conjoin([out, *_limit_schema(schema["function"]["function"])])

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        out = super().model_schema(schema)
        rule = _MODEL_RULES.get(schema["cls"])
        return _conjoin([out, rule]) if rule else out


# ---- target options ------------------------------------------------------------------------------

# Descriptions of target options whose models do not carry them yet, keyed by (target, option path). A stopgap
# until each options model says them with Field(description=...), which always wins over this table.
OPTION_DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("airflow", "aws_conn_id"): "The Airflow connection the AWS operators (Batch, SageMaker) use.",
    ("airflow", "kubernetes_conn_id"): "The Airflow connection KubernetesPodOperator uses to reach the cluster.",
    ("airflow", "sagemaker_volume_gb"): "The storage volume of each SageMaker training job, in GB (VolumeSizeInGB).",
    ("stepfunctions", "query_language"): (
        "JSONPath (literal values are never evaluated; runs unchanged in local ASL interpreters) or JSONata."
    ),
    ("stepfunctions", "runtime_function"): (
        "The Lambda function (name, ARN or alias ARN) that runs pipegen.runtime.lambda_handler.handler."
    ),
    ("stepfunctions", "eks_cluster"): "The EKS cluster kubernetes steps run on (eks:runJob needs its endpoint and CA).",
    ("stepfunctions", "eks_cluster.name"): "The cluster's name.",
    ("stepfunctions", "eks_cluster.endpoint"): "The cluster's API server endpoint (https://...).",
    ("stepfunctions", "eks_cluster.certificate_authority"): "The cluster's certificate authority data (base64).",
    ("stepfunctions", "state_machine_arn"): "The state machine the schedule starts (<name>.schedule.json).",
    ("stepfunctions", "scheduler_role_arn"): "The IAM role EventBridge Scheduler assumes to start it.",
}


def refs_of(node: Any) -> list[str]:
    """The $defs names a property schema refers to, directly or through anyOf/allOf."""
    found = [str(node["$ref"]).rsplit("/", 1)[-1]] if "$ref" in node else []
    for key in ("anyOf", "allOf", "oneOf"):
        for part in node.get(key, []):
            found += refs_of(part)
    return found


def _describe_options(target: str, model: JsonSchemaValue, defs: JsonSchemaValue, prefix: str = "") -> None:
    """Fill in the options' missing descriptions from OPTION_DESCRIPTIONS, nested models too, in place."""
    for key, prop in model.get("properties", {}).items():
        text = OPTION_DESCRIPTIONS.get((target, prefix + key))
        if text and "description" not in prop:
            prop["description"] = text
        for ref in refs_of(prop):
            _describe_options(target, defs[ref], defs, f"{prefix}{key}.")


def options_schema(target: Target) -> JsonSchemaValue:
    """One target's options (`targets: {<name>: ...}`) as JSON Schema, with $defs, descriptions filled in."""
    schema = target.options_model.model_json_schema(schema_generator=_Generator)
    _describe_options(target.name, schema, schema.get("$defs", {}))
    return schema


def _with_targets(targets: dict[str, Target]) -> type[BaseModel]:
    """Spec with `targets:` typed as what the registered targets take, for the schema only (the check validates)."""
    fields: dict[str, Any] = {
        f"target_{i}": (
            target.options_model,
            Field(default=None, alias=name, description=f"Options for {target.title} (compile -t {name})."),
        )
        for i, (name, target) in enumerate(targets.items())
    }
    section = create_model(
        "Targets",
        __config__=ConfigDict(extra="forbid"),
        __doc__="Options for each target, under its name; 'pipegen targets' lists them.",
        **fields,
    )
    return create_model("Spec", __base__=Spec, __doc__=Spec.__doc__, targets=(section, Field(default_factory=dict)))


def json_schema() -> dict[str, object]:
    """The JSON Schema (draft 2020-12) generated from the spec models and the registered targets' options."""
    from pipegen.targets import available

    targets = available()
    schema = _with_targets(targets).model_json_schema(schema_generator=_Generator)
    defs = schema["$defs"]
    for name, target in targets.items():
        option = defs["Targets"]["properties"][name]
        option.pop("default", None)  # an absent section is not `null`
        for ref in refs_of(option):
            _describe_options(target.name, defs[ref], defs)
    # `schedule: "0 2 * * *"` is shorthand for the mapping form; the models accept it before validation.
    properties = schema["properties"]
    properties["schedule"] = {
        "anyOf": [
            {"type": "string", "description": "cron expression or preset", **_VALIDATORS[spec._check_cron]},
            {"$ref": "#/$defs/Schedule"},
        ],
        "description": "When the pipeline runs; omitted means manual trigger only.",
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "pipegen pipeline spec, format 1",
    }


def schema_text() -> str:
    """The schema as canonical JSON text (what `pipegen schema` prints and schema/ holds)."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
