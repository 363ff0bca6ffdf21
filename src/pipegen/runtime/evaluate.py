"""evaluate: judge a training run by its thresholds and, optionally, against the current champion."""

from __future__ import annotations

from typing import Any

from pipegen.runtime import tags
from pipegen.runtime.champion import current_holder, describe, improvement, meets_delta, usable, version_metric
from pipegen.runtime.tracking import client, reaching
from pipegen.thresholds import parse_threshold


def evaluate(
    *,
    run_id: str,
    thresholds: list[str],
    champion: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Return {passed, metrics, reasons}; champion = {metric, mode, min_delta, model, alias}."""
    c = client(tracking_uri)
    reasons: list[str] = []
    passed = True
    with reaching(tracking_uri, "reading the run's metrics"):
        metrics = {k: float(v) for k, v in sorted(c.get_run(run_id).data.metrics.items())}
        for text in thresholds:
            threshold = parse_threshold(text)
            value = metrics.get(threshold.metric)
            if value is None:
                passed = False
                reasons.append(f"{threshold}: metric '{threshold.metric}' was not logged by run {run_id}")
            elif threshold.holds(value):
                reasons.append(f"{threshold}: ok ({threshold.metric} = {describe(value)})")
            else:
                passed = False
                reasons.append(f"{threshold}: failed ({threshold.metric} = {describe(value)})")
        if champion is not None:
            ok, reason = _against_champion(c, run_id, metrics, champion)
            passed = passed and ok
            reasons.append(reason)
        c.set_tag(run_id, tags.EVALUATION, "passed" if passed else "failed")
        c.set_tag(run_id, tags.EVALUATION_REASONS, "; ".join(reasons)[:5000])
    return {"passed": passed, "metrics": metrics, "reasons": reasons}


def _against_champion(c: Any, run_id: str, metrics: dict[str, float], champion: dict[str, Any]) -> tuple[bool, str]:
    metric, mode = str(champion["metric"]), str(champion.get("mode", "max"))
    min_delta = float(champion.get("min_delta", 0.0))
    model, alias = str(champion["model"]), str(champion["alias"])
    ours = metrics.get(metric)
    if ours is None:
        return False, f"champion: metric '{metric}' was not logged by run {run_id}"
    if not usable(ours):
        return False, f"champion: {metric} = {describe(ours)} cannot be compared (NaN and infinities never win)"
    holder = current_holder(c, model, alias)
    if holder is None:
        return True, f"champion: {model}@{alias} has no holder yet; thresholds alone decide"
    if holder.run_id == run_id:
        return True, f"champion: this run already holds {model}@{alias} (version {holder.version})"
    theirs = version_metric(c, holder, metric)
    if theirs is None:
        return True, f"champion: version {holder.version} of {model}@{alias} has no '{metric}'; thresholds alone decide"
    if not usable(theirs):
        # A champion whose metric is NaN or infinite could never be beaten: it does not count as one.
        return True, (
            f"champion: version {holder.version} of {model}@{alias} has {metric} = {describe(theirs)}, "
            "which cannot be compared; thresholds alone decide"
        )
    gain = improvement(ours, theirs, mode)
    beats = meets_delta(gain, min_delta)
    verdict = "beats" if beats else "does not beat"
    return beats, (
        f"champion: {metric} = {describe(ours)} {verdict} version {holder.version} of {model}@{alias} "
        f"({describe(theirs)}, {mode}, min_delta {describe(min_delta)})"
    )
