"""Property tests: whatever the input, the front end returns diagnostics and never raises."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipegen.diagnostics import Diagnostic
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.cases import SPECS

VALID = [yaml.safe_load(p.read_text()) for p in SPECS]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "${params.x}",
            "${run.date}",
            "${",
            "}",
            "@daily",
            "0 2 * * *",
            "5m",
            "ndcg > 0.5",
            "train",
            "local",
            "kubernetes",
            "row_count",
            "postgresql://u:p@h/db",
            "-1",
            "1e999",
            "latest",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def run(text: str) -> list[Diagnostic]:
    checked = check_source(Source("fuzz.yaml", text))
    for d in checked.diagnostics:
        assert d.location.file == "fuzz.yaml"
        assert d.location.line >= 1 and d.location.column >= 1
        assert d.format()
    return checked.diagnostics


@SETTINGS
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    run(text)


@SETTINGS
@given(values)
def test_arbitrary_yaml_documents(data: Any) -> None:
    run(yaml.safe_dump(data, allow_unicode=True))


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*path, i)))
    return out


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add_key", "duplicate"]))
        key = path[-1]
        if action == "replace":
            parent[key] = draw(values)
        elif action == "delete":
            del parent[key]
        elif action == "add_key" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    return data


@SETTINGS
@given(mutated_specs())
def test_mutated_valid_specs(data: Any) -> None:
    run(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


@SETTINGS
@given(st.sampled_from([p.read_text() for p in SPECS]), st.integers(min_value=0), st.text(max_size=8))
def test_text_splices(text: str, at: int, insert: str) -> None:
    """Characters spliced into a valid spec's text: broken YAML, odd indentation, stray quotes."""
    at %= len(text) + 1
    run(text[:at] + insert + text[at:])
