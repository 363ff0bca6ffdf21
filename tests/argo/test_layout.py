"""The manifest's bytes do not depend on whether PyYAML has libyaml: both emitters write the same YAML."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from pipegen.compiler import compile_checked
from pipegen.frontend import check_file, check_source
from pipegen.loader import Source
from pipegen.targets.argo.layout import PureDumper, dump
from tests.argo.strict import documents
from tests.hostile import BACKEND_TYPES, hostile_spec
from tests.hostile import dump as dump_spec


def _manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for spec in ("specs/demo.yaml", "specs/feed-ranking.yaml", "specs/pricing.yaml"):
        docs += documents(compile_checked(check_file(spec), ["argo"]).outputs[0].text)
    for backend in BACKEND_TYPES:
        data, _ = hostile_spec(backend, target="argo")
        if backend == "kubernetes":
            data["backends"]["b"]["node_selector"] = {"pool": "r-1"}
        result = compile_checked(check_source(Source("h.yaml", dump_spec(data))), ["argo"])
        if result.ok:
            docs += documents(result.outputs[0].text)
    return docs


@pytest.mark.skipif(not hasattr(yaml, "CSafeDumper"), reason="PyYAML without libyaml writes with PureDumper")
def test_libyaml_and_pure_python_write_the_same_bytes() -> None:
    docs = _manifests()
    assert len(docs) > 6
    # Long strings, line breaks, control and non-BMP characters: where emitters differ when they fold lines.
    docs.append({"a": "\x85 \u2028 \ufeff x\u00a0 \U0001f600 \t tab\n\nline  ", "b": [" lead", "x" * 300 + " y"]})
    for doc in docs:
        assert dump(doc) == dump(doc, PureDumper)
