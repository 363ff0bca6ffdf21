"""Argo 4's API models (hera 7.1.0, generated from Argo 4.0.5's OpenAPI) made strict, to validate manifests.

hera's models ignore unknown keys and accept the Python field names as well as the wire names; Argo's API
server does neither. The config below must be set on the base class before any model module is imported
(pydantic builds each model's validator from its config when the class is created), so this module is the
only place tests import the models from. The config is private to hera: hera is pinned, and
test_strict_models checks that a misspelt or snake_case key is still rejected.
"""

from __future__ import annotations

from typing import Any

import yaml
from hera.shared import _pydantic

_pydantic.APIBaseModel.model_config.update(
    extra="forbid", validate_by_name=False, validate_by_alias=True, populate_by_name=False
)

from hera.workflows.models.io.argoproj.workflow.v1alpha1 import (  # noqa: E402 - after the config above
    CronWorkflow,
    Workflow,
    WorkflowTemplate,
)

MODELS = {"WorkflowTemplate": WorkflowTemplate, "CronWorkflow": CronWorkflow, "Workflow": Workflow}


def validate_document(document: dict[str, Any]) -> Any:
    """The document as its strict Argo model; pydantic's ValidationError names what Argo would refuse."""
    return MODELS[document["kind"]].model_validate(document)


def documents(text: str) -> list[dict[str, Any]]:
    """The YAML documents of a manifest (its header comment is no document)."""
    return [d for d in yaml.safe_load_all(text) if d is not None]
