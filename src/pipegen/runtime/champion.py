"""Reading the current alias holder and comparing metrics in the champion's direction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipegen.runtime import tags

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


def current_holder(c: MlflowClient, model: str, alias: str) -> ModelVersion | None:
    """The model version that holds the alias, or None when there is none (or no such model yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return c.get_model_version_by_alias(model, alias)
    except MlflowException as exc:
        # A missing model is RESOURCE_DOES_NOT_EXIST; a missing alias comes back as
        # INVALID_PARAMETER_VALUE "... alias ... not found" over REST.
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in exc.message.lower():
            return None
        raise


def version_metric(c: MlflowClient, version: ModelVersion, metric: str) -> float | None:
    """A version's metric: from the tag pipegen wrote at promotion, else from its source run."""
    tagged = (version.tags or {}).get(tags.METRIC_PREFIX + metric)
    if tagged is not None:
        return float(tagged)
    if version.run_id:
        value = c.get_run(version.run_id).data.metrics.get(metric)
        return None if value is None else float(value)
    return None


def improvement(ours: float, theirs: float, mode: str) -> float:
    """How much better ours is than theirs: positive is better, in the champion's direction."""
    return ours - theirs if mode == "max" else theirs - ours


def describe(value: Any) -> str:
    """A metric value for messages and tags, stable across engines."""
    return f"{float(value):.6g}"
