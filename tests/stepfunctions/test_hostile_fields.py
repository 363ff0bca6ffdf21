"""Step Functions definitions of specs with hostile text in every string field (generated from the models, see
tests.hostile): valid for asl-validator; in JSONata, every expression evaluates with the reference evaluator and
every literal reads back as spec text; in JSONPath, no spec text sits where a path or intrinsic is read (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import BACKEND_TYPES, HOSTILE_LINE, VARIANTS, dump, hostile_spec, literal_value
from tests.stepfunctions.asl import compile_text, load, strings, validate
from tests.stepfunctions.test_jsonata import _generic_bindings, evaluate, expressions
from tests.stepfunctions.test_line_breaks import unreadable_list_strings

# Glue is not here: it takes only `--key value` arguments and no sizes, which the generated skeleton's command and
# driver/executors are not (test_spark.py runs hostile text through a Glue job in moto's executor instead).
RUNS = [b for b in BACKEND_TYPES if b in ("kubernetes", "aws_batch", "sagemaker")] + [
    v for v in VARIANTS if v in ("spark.emr", "spark.emr_serverless", "spark.emr_on_eks")
]
MARK = HOSTILE_LINE.split(" ")[0]  # the hostile text's first word, in every form the generator writes


def compiled(tmp_path: Path, backend: str, language: str) -> tuple[dict[str, Any], dict[str, Any], Path]:
    data, _ = hostile_spec(backend, target="stepfunctions")
    data["targets"]["stepfunctions"]["query_language"] = language
    outputs, diags = compile_text(dump(data), tmp_path, "hostile.yaml")
    assert outputs, diags
    path = tmp_path / "hostile.asl.json"
    path.write_text(outputs["stepfunctions/hostile.asl.json"], encoding="utf-8")
    return data, load(path.read_text(encoding="utf-8")), path


def written(data: Any) -> set[str]:
    """Every string of the spec, as written and as its literal meaning ($${ read as ${)."""
    found = {v for _, v in strings(data)} | {k for k in _keys(data)}
    # Plain (expression-free) fields reach the runtime as templates whose every ${ is escaped.
    return found | {literal_value(w) for w in found} | {w.replace("${", "$${") for w in found}


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


# asl-validator 4 reads each string inside an array of a JSONPath payload (and each JSONata template string) with
# ^(?!\{% )(.+)(?! %\})$, whose `.` stops at a line break: the hostile text's line breaks reach no such place
# (runtime requests carry their spec as one JSON string in JSONPath; see test_line_breaks.py).
@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
@pytest.mark.parametrize("backend", RUNS)
def test_hostile_definition_is_valid(tmp_path: Path, backend: str, language: str) -> None:
    _, doc, path = compiled(tmp_path, backend, language)
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    if language == "JSONPath":  # the validator names only its first finding: look for all of them
        assert unreadable_list_strings(doc) == []


@pytest.mark.parametrize("backend", RUNS)
def test_jsonata_expressions_evaluate_and_literals_read_back(tmp_path: Path, backend: str) -> None:
    data, doc, _ = compiled(tmp_path, backend, "JSONata")
    exprs = expressions(doc)
    results = evaluate([{"expr": e, "bindings": _generic_bindings(exprs)} for e in exprs])
    assert [(e, r) for e, r in zip(exprs, results, strict=True) if "error" in r] == []
    # Expressions holding spec text hold it as a string literal that evaluates back to that very text.
    spec_text = written(data)
    for expr, result in zip(exprs, results, strict=True):
        if MARK in expr:
            assert any(MARK in s and s in spec_text for s in _strings_in(result["value"])), expr[:300]
    # Spec text outside {% %} is never an expression: JSONata reads only whole "{% ... %}" strings.
    for _, value in strings(doc):
        if MARK in value:
            assert not (value.startswith("{%") and value.endswith("%}")) or value[2:-2].strip().startswith(
                ('"', "[", "$", "{")
            )


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings_in(v)]
    return []


@pytest.mark.parametrize("backend", RUNS)
def test_jsonpath_never_reads_spec_text_as_a_path(tmp_path: Path, backend: str) -> None:
    data, doc, _ = compiled(tmp_path, backend, "JSONPath")
    spec_text = written(data)

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key.endswith(".$"):
                    # A path or intrinsic: spec text may appear only as a quoted intrinsic argument.
                    text = json.dumps(item, ensure_ascii=False)
                    assert MARK not in text or "States." in text, (key, text[:300])
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(doc)
    # Spec text that reached the definition as a plain value is a spec string (or part of one), unchanged; a
    # runtime request's spec is one JSON string (spec_json), whose strings are spec text once decoded.
    pairs = strings(doc)
    requests = [json.loads(v) for k, v in pairs if k == "spec_json"]
    assert requests
    plain = [v for k, v in [*pairs, *strings(requests)] if MARK in v and not k.endswith(".$") and k != "spec_json"]
    assert plain and all(any(v in s or s in v for s in spec_text if MARK in s) for v in plain)
