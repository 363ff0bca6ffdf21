"""Helpers for checking generated ASL: the pinned asl-validator, and compiling specs for Step Functions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.cases import REPO

VALIDATOR = REPO / "tools" / "node" / "node_modules" / ".bin" / "asl-validator"


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    """Run asl-validator (pinned in tools/node) on a definition file."""
    assert VALIDATOR.exists(), "run `make node` first"
    return subprocess.run(
        [str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, check=False, timeout=120
    )


def compile_text(text: str, tmp_path: Path, name: str = "spec.yaml") -> tuple[dict[str, str], list[str]]:
    """Compile spec text for stepfunctions: ({relative path: text}, formatted diagnostics)."""
    from pipegen.compiler import compile_checked
    from pipegen.frontend import check_file

    spec = tmp_path / name
    spec.write_text(text, encoding="utf-8")
    result = compile_checked(check_file(str(spec)), ["stepfunctions"])
    return {o.path: o.text for o in result.outputs}, [d.format() for d in result.diagnostics]


def with_targets(text: str, **options: Any) -> str:
    """The spec text with `targets: {stepfunctions: options}` added (into its own `targets:` block if it has one)."""
    entry = "  stepfunctions: " + json.dumps(options, ensure_ascii=False) + "\n"
    if "\ntargets:\n" in text:  # specs/*.yaml set targets.kfp.base_image
        return text.replace("\ntargets:\n", "\ntargets:\n" + entry, 1)
    return text + "targets:\n" + entry


def hostile_spec(s: str, language: str) -> str:
    """tests.hostile's spec with s also in every Step Functions option, in the given query language."""
    from tests.hostile import spec_text

    options = {
        "query_language": language,
        "runtime_function": s,
        "eks_cluster": {"name": s, "endpoint": s, "certificate_authority": s},
    }
    return with_targets(spec_text(s), **options)


def strings(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Every (object key, string value) pair in a JSON document, list items under their list's key."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in strings(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in strings(v, key)]
    return [(key, value)] if isinstance(value, str) else []


def load(text: str) -> Any:
    """The definition, parsed strictly (no NaN, no duplicate keys)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
        return dict(pairs)

    def no_constant(name: str) -> Any:
        raise AssertionError(f"non-JSON constant {name}")

    return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)


def all_states(states: dict[str, Any]) -> dict[str, Any]:
    """Every state by name, those inside Parallel branches (nested ones too) included."""
    out = dict(states)
    for state in states.values():
        for branch in state.get("Branches", []):
            out |= all_states(branch["States"])
    return out
