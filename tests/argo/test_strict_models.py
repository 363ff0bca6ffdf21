"""Every Argo golden validates against Argo 4's API models made strict; the strictness itself is tested too."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.argo.strict import documents, validate_document
from tests.cases import GOLDEN

GOLDENS = sorted((GOLDEN / "argo").glob("*.yaml"))


def test_there_are_argo_goldens() -> None:
    assert {p.stem for p in GOLDENS} >= {"demo", "feed-ranking", "pricing"}


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.stem)
def test_golden_validates_strictly(path: Path) -> None:
    docs = documents(path.read_text())
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "WorkflowTemplate"
    assert kinds[1:] in ([], ["CronWorkflow"])
    for doc in docs:
        model = validate_document(doc)
        # Nothing dropped: the model dumped by alias is the document itself.
        assert model.model_dump(by_alias=True, exclude_none=True, mode="json") == doc


def _feed_template() -> dict[str, object]:
    return documents((GOLDEN / "argo" / "feed-ranking.yaml").read_text())[0]


@pytest.mark.parametrize(
    ("where", "bad_key"),
    [
        (("spec",), "entryPoint"),  # misspelt
        (("spec",), "service_account_name"),  # the Python field name, not the wire name
        (("spec", "templates", 1), "activeDeadline"),
    ],
)
def test_unknown_or_python_named_key_is_rejected(where: tuple[object, ...], bad_key: str) -> None:
    doc = copy.deepcopy(_feed_template())
    node: object = doc
    for key in where:
        node = node[key]  # type: ignore[index]
    assert isinstance(node, dict)
    node[bad_key] = "x"
    with pytest.raises(ValidationError, match=bad_key):
        validate_document(doc)


def test_retry_backoff_uses_argo_4_wire_names() -> None:
    doc = copy.deepcopy(_feed_template())
    template = next(t for t in doc["spec"]["templates"] if t["name"] == "train")  # type: ignore[index]
    template["retryStrategy"]["backoff"]["max_retry_delay"] = "1h"
    with pytest.raises(ValidationError, match="max_retry_delay"):
        validate_document(doc)
