"""The normalised end state of one engine run, and the table that compares engines row by row.

Only what legitimately differs between engines is normalised, each on a commented line below;
everything else is compared as the engine left it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# What `pipegen.target` must say on each engine (compared as "<own target>" when it does).
TARGET_OF = {
    "pipegen": "local",
    "airflow": "airflow",
    "kfp": "kfp",
    "stepfunctions": "stepfunctions",
    "prefect": "prefect",
}
MISSING = "-"


@dataclass
class Labeller:
    """Gives engine-specific identifiers (MLflow run ids, run keys) stable labels by first appearance.

    Two engines agree when their identifiers play the same roles: the same run referred to from the same
    places, one run key for the whole pipeline run. The identifiers' text is each engine's own.
    """

    kind: str
    seen: dict[str, str] = field(default_factory=dict)

    def __call__(self, value: str) -> str:
        if value not in self.seen:
            self.seen[value] = f"<{self.kind} {len(self.seen) + 1}>"
        return self.seen[value]

    def replace_in(self, text: str) -> str:
        """Every known identifier inside a longer text replaced by its label."""
        for value, label in self.seen.items():
            text = text.replace(value, label)
        return text


def normalise(
    engine: str,
    result: Any,
    mlflow: dict[str, Any],
    webhooks: list[dict[str, Any]],
    jobs: list[dict[str, Any]],
    tracking_uri: str,
) -> dict[str, str]:
    """One engine's end state as {row: value}, with only the engine-specific parts normalised."""
    runs = Labeller("run")
    keys = Labeller("run key")
    rows: dict[str, str] = {"pipeline status": result.status}
    # Runs are listed by step, then start time: parallel branches start their runs in either order.
    mlflow = {**mlflow, "runs": sorted(mlflow["runs"], key=lambda r: r["tags"].get("pipegen.step", ""))}
    for run in mlflow["runs"]:
        runs(run["id"])

    def clean(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        # Run ids inside texts (evaluation reasons, webhook bodies) are engine-specific: labelled.
        return keys.replace_in(runs.replace_in(text))

    for name, step in result.steps.items():
        rows[f"step {name}"] = step.outcome
        # A rejected evaluation's reason is the runtime's own text, the same everywhere: compared. Other
        # reasons are each engine's words for a failure (an Airflow exception, a Step Functions cause): not.
        if step.outcome == "rejected":
            rows[f"step {name} reason"] = clean(step.reason or "")
    rows["mlflow runs"] = str(len(mlflow["runs"]))
    for index, run in enumerate(mlflow["runs"], 1):
        prefix = f"run {index} ({run['tags'].get('pipegen.step', '?')})"
        rows[f"{prefix} status"] = run["status"]
        for tag, value in run["tags"].items():
            rows[f"{prefix} tag {tag}"] = _tag(engine, tag, value, keys)
        for param, value in run["params"].items():
            rows[f"{prefix} param {param}"] = value
        for metric, value in run["metrics"].items():
            rows[f"{prefix} metric {metric}"] = repr(value)
    for model, state in mlflow["models"].items():
        if state is None:
            rows[f"model {model}"] = "not registered"
            continue
        rows[f"model {model} versions"] = str(len(state["versions"]))
        for alias, version in state["aliases"].items():
            rows[f"model {model} alias {alias}"] = f"version {version}"
        for version, info in state["versions"].items():
            # A version's source run, by label: which run it came from is what must agree.
            rows[f"model {model} v{version} run"] = runs(info["run"]) if info["run"] else MISSING
            for tag, value in info["tags"].items():
                rows[f"model {model} v{version} tag {tag}"] = _tag(engine, tag, value, keys)
    rows["webhooks"] = str(len(webhooks))
    # Webhooks are compared as a sorted list: parallel branches may notify in either order.
    for index, hook in enumerate(sorted(clean(h) for h in webhooks), 1):
        rows[f"webhook {index}"] = hook
    rows["job runs"] = str(len(jobs))
    # Job records likewise sorted: a fan-out's jobs start in an engine-chosen order.
    experiment = mlflow.get("experiment_id")
    for index, job in enumerate(sorted(_job(j, runs, tracking_uri, experiment) for j in jobs), 1):
        rows[f"job {index}"] = job
    return rows


def _tag(engine: str, tag: str, value: str, keys: Labeller) -> str:
    if tag == "pipegen.target":
        # Each engine writes its own target name: compared as "is this engine's own".
        return "<own target>" if value == TARGET_OF.get(engine) else value
    if tag == "pipegen.run_key":
        # Each engine names its runs its own way (manual__..., local__..., an execution name): labelled.
        return keys(value)
    if tag in ("pipegen.promote_attempt_ms", "pipegen.closed_ms"):
        # A wall-clock timestamp (the promotion attempt; the end the runtime gave a run): only its shape is compared.
        return "<ms>" if value.isdigit() else value
    return value


# What the runtime gives a training job (runtime.start_run.training_env); the spec's own env is JOB_*.
TRAINING_ENV = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI")


def _job(record: dict[str, Any], runs: Labeller, tracking_uri: str, experiment: str | None) -> str:
    # A local job inherits its orchestrator's environment (PATH, the runtime's MLFLOW_HTTP_* client settings,
    # Airflow's own variables), a container only its spec's: only the spec's (JOB_*) and the runtime's
    # training variables are compared.
    env = {k: v for k, v in record.get("env", {}).items() if k.startswith("JOB_") or k in TRAINING_ENV}
    if "MLFLOW_RUN_ID" not in env:
        # A job without a run (a task step's, e.g. a Spark application) gets no MLflow variables from the runtime:
        # any it has it inherited from its orchestrator (a worker configured with MLFLOW_TRACKING_URI, which
        # `pipegen run --tracking-uri` is not): only the spec's own are compared.
        env = {k: v for k, v in env.items() if k.startswith("JOB_")}
    if "MLFLOW_RUN_ID" in env:
        # The run the job logs into, by label (its id is engine-specific).
        env["MLFLOW_RUN_ID"] = runs(env["MLFLOW_RUN_ID"])
    if experiment is not None and env.get("MLFLOW_EXPERIMENT_ID") == experiment:
        # Experiment ids count the experiments a store has seen (other specs' too): compared as "the spec's own".
        env["MLFLOW_EXPERIMENT_ID"] = "<own experiment>"
    if env.get("MLFLOW_TRACKING_URI", "").rstrip("/") == tracking_uri.rstrip("/"):
        # Each engine has its own tracking server: compared as "this engine's own server".
        env["MLFLOW_TRACKING_URI"] = "<own server>"
    # Its start and end times are wall-clock readings: not compared (the harness prints the fan-out span).
    return json.dumps({"argv": record.get("argv"), "env": env, "attempt": record.get("attempt")}, sort_keys=True)


@dataclass
class Table:
    """Rows of normalised values, one column per engine."""

    engines: list[str]
    rows: dict[str, dict[str, str]]

    @property
    def differing(self) -> list[str]:
        """The rows on which the engines do not all agree."""
        return [row for row, values in self.rows.items() if len({values.get(e, MISSING) for e in self.engines}) > 1]

    def render(self, width: int = 40) -> str:
        """The table as text; a `!` marks each row that differs."""
        differing = set(self.differing)
        label_width = min(60, max((len(r) for r in self.rows), default=10))
        header = f"  {'':{label_width}}  " + "  ".join(f"{e:{width}}" for e in self.engines)
        lines = [header.rstrip()]
        for row, values in self.rows.items():
            cells = "  ".join(f"{_cut(values.get(e, MISSING), width):{width}}" for e in self.engines)
            lines.append(f"{'!' if row in differing else ' '} {_cut(row, label_width):{label_width}}  {cells}".rstrip())
        return "\n".join(lines) + "\n"


def _cut(text: str, width: int) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= width else text[: width - 1] + "…"


def table(states: dict[str, dict[str, str]]) -> Table:
    """Merge each engine's rows into one table (rows in first-seen order)."""
    rows: dict[str, dict[str, str]] = {}
    for engine, state in states.items():
        for row, value in state.items():
            rows.setdefault(row, {})[engine] = value
    return Table(list(states), rows)
