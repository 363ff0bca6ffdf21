"""Reading the current alias holder and comparing metrics in the champion's direction."""

from __future__ import annotations

import math
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
    """A version's metric at full precision: from its source run, else from the tag pipegen wrote at promotion.

    The run's value is what training logged; the tag is for people reading the registry (and holds the
    full value too, but versions registered by other tools may carry rounded ones).
    """
    if version.run_id:
        from mlflow.exceptions import MlflowException

        try:
            value = c.get_run(version.run_id).data.metrics.get(metric)
        except MlflowException as exc:
            # A deleted source run leaves the version; its tag is then the only record of the metric.
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                raise
        else:
            if value is not None:
                return float(value)
    tagged = (version.tags or {}).get(tags.METRIC_PREFIX + metric)
    return None if tagged is None else float(tagged)


def improvement(ours: float, theirs: float, mode: str) -> float:
    """How much better ours is than theirs: positive is better, in the champion's direction."""
    return ours - theirs if mode == "max" else theirs - ours


def meets_delta(gain: float, min_delta: float) -> bool:
    """True when a gain beats the champion by at least min_delta.

    A gain equal to min_delta up to floating-point rounding counts as meeting it (0.3 - 0.1 against
    min_delta 0.2); with min_delta 0 the gain must still be positive, so a tie never moves the alias.
    """
    if not gain > 0:
        return False
    return gain >= min_delta or math.isclose(gain, min_delta, rel_tol=1e-9, abs_tol=1e-12)


def usable(value: float | None) -> bool:
    """A metric value that can decide anything: logged, and neither NaN nor infinite."""
    return value is not None and math.isfinite(value)


def describe(value: Any) -> str:
    """A metric value for messages, stable across engines (comparisons never use this text)."""
    return f"{float(value):.6g}"


def exact(value: Any) -> str:
    """A metric value for tags: the shortest text that reads back as the same float."""
    return repr(float(value))
