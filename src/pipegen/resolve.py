"""The resolved pipeline that targets see: defaults applied, references resolved, steps in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pipegen.diagnostics import Location
from pipegen.durations import parse_duration
from pipegen.expr import Template, parse_template
from pipegen.loader import SourceMap
from pipegen.schedule import PRESETS, normalize_cron
from pipegen.spec import (
    Backend,
    Evaluate,
    FreshnessGate,
    Gate,
    LocalBackend,
    Policy,
    Promote,
    RowCountGate,
    Spec,
    Step,
    Task,
)
from pipegen.thresholds import Threshold, parse_threshold

if TYPE_CHECKING:
    from pipegen.frontend import Checked

# What a step gets when neither it nor 'defaults' says otherwise (Airflow's own defaults).
BUILTIN_POLICY = Policy(retries=0, retry_delay="5m", backoff="fixed")
IMPLICIT_BACKEND = "local"


@dataclass(frozen=True)
class RetryPolicy:
    """Retries and timeouts of one step, in seconds."""

    retries: int
    retry_delay: int
    backoff: str
    max_retry_delay: int | None
    timeout: int | None

    def runtime_retry(self) -> dict[str, object]:
        """The policy as pipegen.runtime.retrying takes it: {retries, delay_seconds, backoff, max_delay_seconds}."""
        return {
            "retries": self.retries,
            "delay_seconds": self.retry_delay,
            "backoff": 2.0 if self.backoff == "exponential" else 1.0,
            "max_delay_seconds": self.max_retry_delay,
        }


@dataclass(frozen=True)
class ResolvedSchedule:
    """A schedule with its cron normalised to five fields."""

    cron: str
    preset: str | None
    timezone: str
    start: date | None
    catchup: bool


@dataclass(frozen=True)
class ResolvedStep:
    """One step with everything a target needs to emit it."""

    name: str
    kind: str
    upstream: tuple[str, ...]
    policy: RetryPolicy
    step: Step
    location: Location
    path: tuple[str | int, ...]
    backend_name: str | None = None
    backend: Backend | None = None
    thresholds: tuple[Threshold, ...] = ()
    # evaluate: {metric, mode, min_delta, model, alias} to compare with the alias holder;
    # promote: {metric, mode} to rank racing promotions (None: the newest version wins).
    champion: dict[str, Any] | None = None
    # promote: the thresholds of the evaluate step that judged its run (recorded on the version).
    judged_by: tuple[str, ...] = ()
    # gate: the runtime's gate request; strings are spec templates, durations are seconds.
    gate: dict[str, Any] | None = None

    @property
    def body(self) -> Any:
        """The kind-specific spec model (Gate, Task, Train, Evaluate or Promote)."""
        return self.step.body


@dataclass(frozen=True)
class Pipeline:
    """A checked, resolved pipeline."""

    spec: Spec
    spec_path: str
    spec_sha256: str
    schedule: ResolvedSchedule | None
    steps: tuple[ResolvedStep, ...]
    experiment: str
    tracking_uri: Template | None
    source_map: SourceMap

    def locate(self, step: ResolvedStep, *path: str | int) -> Location:
        """The file location of a value inside a step, e.g. locate(step, "train", "backend")."""
        return self.source_map.value((*step.path, *path))

    @property
    def name(self) -> str:
        """The pipeline name, which names every output."""
        return self.spec.name

    def step(self, name: str) -> ResolvedStep:
        """The resolved step with this name."""
        return next(s for s in self.steps if s.name == name)


def template(text: str) -> Template:
    """Parse a spec string that the checks already accepted."""
    return parse_template(text)


def _policy(spec: Spec, step: Step) -> RetryPolicy:
    def pick(key: str) -> Any:
        for source in (step, spec.defaults, BUILTIN_POLICY):
            value = getattr(source, key)
            if value is not None:
                return value
        return None

    max_delay = pick("max_retry_delay")
    timeout = pick("timeout")
    return RetryPolicy(
        retries=pick("retries"),
        retry_delay=parse_duration(pick("retry_delay")),
        backoff=pick("backoff"),
        max_retry_delay=parse_duration(max_delay) if max_delay else None,
        timeout=parse_duration(timeout) if timeout else None,
    )


def resolve_policy_defaults(spec: Spec) -> RetryPolicy:
    """The policy a step gets when it overrides nothing: 'defaults', then the built-in values."""
    return _policy(spec, Step(name="defaults", task=Task(command=["true"])))


def resolve(checked: Checked, spec_path: str | None = None) -> Pipeline:
    """Resolve a spec that passed the checks (no errors) for the targets."""
    spec, graph = checked.spec, checked.graph
    assert spec is not None and graph is not None and checked.ok, "resolve needs a spec without errors"
    index = {s.name: i for i, s in enumerate(spec.steps)}
    backends: dict[str, Backend] = {IMPLICIT_BACKEND: LocalBackend(type="local"), **spec.backends}
    steps = []
    for name in graph.order():
        step = spec.steps[index[name]]
        extra: dict[str, Any] = {}
        body = step.task or step.train
        if body is not None:
            extra["backend_name"] = body.backend or IMPLICIT_BACKEND
            extra["backend"] = backends[extra["backend_name"]]
        if isinstance(step.evaluate, Evaluate):
            extra["thresholds"] = tuple(parse_threshold(t) for t in step.evaluate.thresholds)
            promote = _promote_of(spec, step.evaluate.run_of)
            ch = step.evaluate.champion
            if ch is not None and promote is not None:
                extra["champion"] = {
                    "metric": ch.metric,
                    "mode": ch.mode,
                    "min_delta": ch.min_delta,
                    "model": promote.model,
                    "alias": promote.alias,
                }
        if isinstance(step.promote, Promote):
            judge = _evaluate_of(spec, step.promote.run_of)
            extra["judged_by"] = tuple(judge.thresholds)
            if judge.champion is not None:
                extra["champion"] = {"metric": judge.champion.metric, "mode": judge.champion.mode}
        if step.gate is not None:
            extra["gate"] = gate_request(step.gate)
        steps.append(
            ResolvedStep(
                name=name,
                kind=step.kind,
                upstream=tuple(graph.upstream(name)),
                policy=_policy(spec, step),
                step=step,
                location=checked.smap.value(("steps", index[name])),
                path=("steps", index[name]),
                **extra,
            )
        )
    schedule = None
    if spec.schedule is not None:
        raw = " ".join(spec.schedule.cron.split())
        schedule = ResolvedSchedule(
            cron=normalize_cron(raw),
            preset=raw if raw in PRESETS else None,
            timezone=spec.schedule.timezone,
            start=spec.schedule.start,
            catchup=spec.schedule.catchup,
        )
    return Pipeline(
        spec=spec,
        spec_path=spec_path or checked.source.path,
        spec_sha256=checked.source.sha256,
        schedule=schedule,
        steps=tuple(steps),
        experiment=spec.mlflow.experiment or spec.name,
        tracking_uri=template(spec.mlflow.tracking_uri) if spec.mlflow.tracking_uri else None,
        source_map=checked.smap,
    )


def gate_request(gate: Gate) -> dict[str, Any]:
    """The runtime's request for a gate: every string a spec template, durations in seconds."""
    request: dict[str, Any] = {"check": gate.check}
    for key in ("path", "connection", "query"):
        if getattr(gate, key, None) is not None:
            request[key] = getattr(gate, key)
    if isinstance(gate, RowCountGate):
        if gate.table is not None:
            # A table name is plain text, not a template: escape it so rendering keeps it as written.
            request["table"] = gate.table.replace("${", "$${")
        request["min_rows"] = gate.min_rows
    if isinstance(gate, FreshnessGate):
        request["max_age_seconds"] = parse_duration(gate.max_age)
    if gate.wait is not None:
        request["wait"] = {
            "timeout_seconds": parse_duration(gate.wait.timeout),
            "interval_seconds": parse_duration(gate.wait.interval),
        }
    return request


def _evaluate_of(spec: Spec, run_of: str) -> Evaluate:
    # The checks guarantee a promote has an evaluate of the same run upstream.
    return next(s.evaluate for s in spec.steps if s.evaluate is not None and s.evaluate.run_of == run_of)


def _promote_of(spec: Spec, run_of: str) -> Promote | None:
    return next((s.promote for s in spec.steps if s.promote is not None and s.promote.run_of == run_of), None)
