"""The definition as uploaded: one compact line per state (branch states too), so it stays small and diffs per state."""

from __future__ import annotations

import json
from typing import Any

from pipegen.resolve import Pipeline
from pipegen.targets.asl import dialect_for
from pipegen.targets.stepfunctions.lowering import Lowering
from pipegen.targets.stepfunctions.options import StepFunctionsOptions

_rendered: dict[tuple[str, str, StepFunctionsOptions], str] = {}


def definition_text(pipeline: Pipeline, options: StepFunctionsOptions) -> str:
    """The definition's text, built once per spec content, path and options (check() measures what render() writes)."""
    key = (pipeline.spec_sha256, pipeline.spec_path, options)
    if key not in _rendered:
        _rendered.clear()
        _rendered[key] = layout(Lowering(pipeline, options, dialect_for(options.query_language)).definition())
    return _rendered[key]


def layout(definition: dict[str, Any]) -> str:
    """A definition's text: top-level fields one per line, then one line per state ("States" comes last)."""
    top = {k: v for k, v in definition.items() if k != "States"}
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in top.items()]
    return "{\n" + "\n".join(lines) + '\n  "States": ' + _states(definition["States"], "  ") + "\n}\n"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _states(states: dict[str, Any], indent: str) -> str:
    inner = indent + "  "
    body = ",\n".join(f"{inner}{_compact(name)}: {_state(state, inner)}" for name, state in states.items())
    return "{\n" + body + "\n" + indent + "}"


def _state(state: dict[str, Any], indent: str) -> str:
    """A state on one line; a Parallel's branch states each on their own line, deeper."""
    if state.get("Type") != "Parallel":
        return _compact(state)
    parts = []
    for key, value in state.items():
        if key == "Branches":
            inner = indent + "  "
            branches = ",\n".join(
                f'{inner}{{"StartAt":{_compact(b["StartAt"])},"States":{_states(b["States"], inner)}}}' for b in value
            )
            parts.append(f'"Branches":[\n{branches}\n{indent}]')
        else:
            parts.append(f"{_compact(key)}:{_compact(value)}")
    return "{" + ",".join(parts) + "}"
