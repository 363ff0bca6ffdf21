"""promote: register the run's model, tag the version, and move the alias, safely under retries and races."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from pipegen.runtime import tags
from pipegen.runtime.champion import current_holder, exact, improvement, usable, version_metric
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.tracking import client, reaching

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModel
    from mlflow.entities.model_registry import ModelVersion

# Promotions whose attempts are this recent are treated as racing with ours (see _settle_alias).
RACE_WINDOW_MS = 15 * 60 * 1000
SETTLE_ROUNDS = 20


def promote(
    *,
    run_id: str,
    model: str,
    alias: str = "champion",
    artifact: str = "model",
    champion: dict[str, Any] | None = None,
    thresholds: list[str] | None = None,
    tracking_uri: str | None = None,
    after_register: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Register runs:/<run_id>/<artifact> as a version of model and point the alias at the best contender.

    A retried promote of the same run reuses its version. When promotions race, the alias ends on the
    best version by the champion metric (or the newest, without one). after_register is a test seam
    called between registering and moving the alias.
    """
    c = client(tracking_uri)
    with reaching(tracking_uri, f"promoting run {run_id} to {model}@{alias}"):
        version = _register_once(c, run_id, model, artifact)
        _tag_version(c, version, run_id, thresholds or [])
        if after_register is not None:
            after_register(version.version)
        before = current_holder(c, model, alias)
        holder = _settle_alias(c, model, alias, version, champion)
    moved = before is None or str(before.version) != str(holder)
    return {
        "model": model,
        "version": str(version.version),
        "alias": alias,
        "holder": str(holder),
        "previous": None if before is None else str(before.version),
        "alias_moved": moved and str(holder) == str(version.version),
    }


def _register_once(c: MlflowClient, run_id: str, model: str, artifact: str) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    # Look before registering: a run without a model must leave no registry object behind.
    source, model_id = _model_source(c, run_id, artifact)
    try:
        c.create_registered_model(model)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    existing = _versions_of_run(c, model, run_id)
    if existing:
        return existing[0]
    # The client call, not mlflow.register_model: the same version, without the fluent API's console lines.
    created = c.create_model_version(model, source, run_id=run_id, model_id=model_id)
    # Retries of one promotion racing each other can each find nothing and register: the registry has no
    # unique key to stop them. Every racer then keeps the run's lowest version and deletes its own if it
    # is not that one, so the run ends with exactly one version whatever the interleaving.
    versions = _versions_of_run(c, model, run_id)
    keep = versions[0] if versions else created
    if str(created.version) != str(keep.version):
        c.delete_model_version(model, created.version)
    return c.get_model_version(model, keep.version)


def _versions_of_run(c: MlflowClient, model: str, run_id: str) -> list[ModelVersion]:
    """The versions of model registered from run_id, lowest number first."""
    found = c.search_model_versions(f"name = '{_quote(model)}' and run_id = '{_quote(run_id)}'")
    return sorted(found, key=lambda v: int(v.version))


def _model_source(c: MlflowClient, run_id: str, artifact: str) -> tuple[str, str | None]:
    """Where the run's MLflow Model is, as mlflow.register_model finds it for `runs:/<run_id>/<artifact>`.

    An MLmodel file under the run's artifact path (MLflow 2, or `log_model(artifact_path=...)`), else a
    LoggedModel of that name whose source is the run (MLflow 3's `log_model(name=...)`). Anything else,
    e.g. files logged with `mlflow.log_artifact`, is not a model MLflow can register or serve.
    """
    artifacts = {a.path for a in c.list_artifacts(run_id, artifact)}
    run = c.get_run(run_id)
    if f"{artifact}/MLmodel" in artifacts:
        return f"{run.info.artifact_uri.rstrip('/')}/{artifact}", None
    models: list[LoggedModel] = []
    page_token = None
    while True:
        page = c.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"name = '{_quote(artifact)}'", page_token=page_token
        )
        models.extend(m for m in page if m.source_run_id == run_id)
        page_token = page.token
        if not page_token:
            break
    if models:
        # As mlflow.register_model does: of several, the one logged at the largest step.
        steps = {o.model_id: o.step for o in (run.outputs.model_outputs if run.outputs else [])}
        chosen = max(models, key=lambda m: (steps.get(m.model_id, -1), m.creation_timestamp or 0))
        return f"models:/{chosen.model_id}", chosen.model_id
    found = ", ".join(sorted(artifacts)) or "nothing"
    raise RuntimeFailure(
        f"run {run_id} has no MLflow Model named '{artifact}' to register (found at '{artifact}': {found}); "
        f"log it from the training script with mlflow.<flavor>.log_model(model, name='{artifact}') or "
        f"mlflow.pyfunc.log_model(name='{artifact}', ...), not mlflow.log_artifact"
    )


def _tag_version(c: MlflowClient, version: ModelVersion, run_id: str, thresholds: list[str]) -> None:
    run = c.get_run(run_id)
    values: dict[str, str] = {k: v for k, v in run.data.tags.items() if k in tags.LINEAGE}
    values.update({tags.METRIC_PREFIX + k: exact(v) for k, v in run.data.metrics.items()})
    if thresholds:
        values[tags.THRESHOLDS] = "; ".join(thresholds)
    values[tags.PROMOTE_ATTEMPT] = str(int(time.time() * 1000))
    for key, value in sorted(values.items()):
        _racing_write(partial(c.set_model_version_tag, version.name, version.version, key, value))


def _rank(c: MlflowClient, version: ModelVersion, champion: dict[str, Any] | None) -> tuple[float, int] | None:
    """How good a version is (larger is better, the newest breaks ties); None when it cannot be ranked."""
    number = int(version.version)
    if champion is None:
        return (0.0, number)
    value = version_metric(c, version, str(champion["metric"]))
    if value is None or not usable(value):
        # NaN or an infinity never holds the alias while a version with a real value contends.
        return None
    # improvement(value, 0) orients the metric so that larger is always better.
    return (improvement(value, 0.0, str(champion.get("mode", "max"))), number)


def _contenders(c: MlflowClient, model: str, alias: str, ours: ModelVersion) -> list[ModelVersion]:
    now = int(time.time() * 1000)
    found = {str(ours.version): c.get_model_version(model, ours.version)}
    holder = current_holder(c, model, alias)
    if holder is not None:
        found[str(holder.version)] = holder
    for version in c.search_model_versions(f"name = '{_quote(model)}'"):
        attempt = (version.tags or {}).get(tags.PROMOTE_ATTEMPT)
        if attempt is not None and now - int(attempt) <= RACE_WINDOW_MS:
            found[str(version.version)] = version
    return list(found.values())


def _settle_alias(c: MlflowClient, model: str, alias: str, ours: ModelVersion, champion: dict[str, Any] | None) -> str:
    """Point the alias at the best contender and re-read until it stays there.

    MLflow has no compare-and-set, so two promoters can each write a stale choice. Every promoter
    keeps re-reading after its write until it sees the alias on the best of all recent attempts; the
    last writer therefore always writes the best, and the alias settles on it.
    """
    for _ in range(SETTLE_ROUNDS):
        ranked = [(rank, v) for v in _contenders(c, model, alias, ours) if (rank := _rank(c, v, champion)) is not None]
        holder = current_holder(c, model, alias)
        if not ranked:
            # Nothing here can be compared (e.g. every contender logged NaN): leave the alias where it is.
            return "" if holder is None else str(holder.version)
        best = max(ranked, key=lambda pair: pair[0])[1]
        if holder is not None and str(holder.version) == str(best.version):
            return str(best.version)
        _racing_write(partial(c.set_registered_model_alias, model, alias, str(best.version)))
        time.sleep(0.2)
    holder = current_holder(c, model, alias)
    return "" if holder is None else str(holder.version)


def _racing_write(write: Callable[[], object], attempts: int = 5) -> None:
    """One registry write that concurrent promoters may make at the same moment.

    MLflow's SQL store writes a tag or an alias as select-then-insert: two writers of the same key can
    both insert, and the loser gets a unique-constraint error although the row now exists. Writing again
    then updates it; any other error is raised at once.
    """
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            write()
            return
        except MlflowException as exc:
            if (
                "UNIQUE constraint" not in exc.message and "IntegrityError" not in exc.message
            ) or attempt + 1 == attempts:
                raise
            time.sleep(0.05 * (attempt + 1))


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
