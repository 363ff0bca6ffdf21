"""The AWS Step Functions target: an Amazon States Language definition per spec (+ an EventBridge schedule).

Steps run one after another in the spec's dependency order. Runtime steps (gates, evaluate, promote,
notifications) are `lambda:invoke` Tasks calling pipegen's Lambda handler; jobs use the services'
`.sync` integrations. The state machine's data is small and fixed: `$.pipegen` (params, run id, run
date), then per step only what a later state reads: `$.prepared`, `$.gates`, `$.evaluations`, `$.promotions`.
A job's result is dropped (`ResultPath: null`; its id is in the execution history), so a long pipeline's
state data stays far below the service's 256 KiB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipegen import __version__
from pipegen.diagnostics import Diagnostic, diag, has_errors
from pipegen.emit import Output
from pipegen.expr import Lit, parse_template
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import AwsBatchBackend, KubernetesBackend, SageMakerBackend
from pipegen.targets.asl import LAMBDA_INVOKE, Dialect, LocalDate, Read, Slot, Text, TextList, dialect_for
from pipegen.targets.base import Support, Target, kubernetes_name, promote_request
from pipegen.targets.eventbridge import schedule_problems, scheduler_schedule
from pipegen.targets.resources import batch_resources, kubernetes_cpu

# The service caps a definition at 1 MiB, and the API request carrying it (as an escaped JSON string,
# beside the name, role, logging and tags, for which some room is kept) at 1 MiB too.
MAX_DEFINITION_BYTES = 1_048_576
MAX_REQUEST_BYTES = 1_048_576
REQUEST_ROOM = 8_192
LAMBDA_MAX_SECONDS = 900
# Errors a Lambda invocation raises on service-side trouble: always worth a quick retry (AWS's advice).
LAMBDA_RETRIER = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    "IntervalSeconds": 1,
    "MaxAttempts": 3,
    "BackoffRate": 2.0,
}
NOTIFY_FAILURE, FAILED, DONE = "pipegen.notify_failure", "pipegen.failed", "pipegen.done"


class EksCluster(BaseModel):
    """The EKS cluster that `kubernetes` steps run on (eks:runJob needs its endpoint and CA)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str
    endpoint: str
    certificate_authority: str


class StepFunctionsOptions(BaseModel):
    """`targets: {stepfunctions: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # JSONPath by default: literal values can never be evaluated (only keys ending in `.$` are), and
    # it runs unchanged in local ASL interpreters; JSONata is the service's newer alternative.
    query_language: Literal["JSONPath", "JSONata"] = "JSONPath"
    # The Lambda function (name, ARN or alias ARN) that runs pipegen.runtime.lambda_handler.handler.
    runtime_function: str = "pipegen-runtime"
    eks_cluster: EksCluster | None = None
    # Filled into <name>.schedule.json; placeholders when not given.
    state_machine_arn: str | None = None
    scheduler_role_arn: str | None = None


class StepFunctionsTarget(Target):
    """AWS Step Functions state machines (Amazon States Language)."""

    name = "stepfunctions"
    title = "AWS Step Functions"
    support = Support(
        backends={
            "aws_batch": "batch:submitJob.sync",
            "sagemaker": "sagemaker:createTrainingJob.sync",
            "kubernetes": "eks:runJob.sync (targets.stepfunctions.eks_cluster names the cluster)",
        },
        gates={
            "partition_exists": "runtime Lambda (a wait is a Wait/Choice loop)",
            "freshness": "runtime Lambda (a wait is a Wait/Choice loop)",
            "row_count": "runtime Lambda (a wait is a Wait/Choice loop)",
            "sql": "runtime Lambda (a wait is a Wait/Choice loop)",
        },
        features={
            "query language": "JSONPath (default) or JSONata: targets.stepfunctions.query_language",
            "schedule": "EventBridge Scheduler schedule beside the definition (<name>.schedule.json)",
            "params": 'execution input {"params": {...}} merged over the spec\'s defaults',
            "step order": "one step at a time in dependency order (independent steps do not run in parallel)",
            "retries/backoff": "Retry (IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds)",
            "timeout": "TimeoutSeconds",
            "evaluate": "runtime Lambda + Choice (skip: later steps skipped, run succeeds; fail: Fail state)",
            "promote": "runtime Lambda",
            "notify.on_failure": "Catch on every task -> runtime Lambda notification -> Fail",
            "${run.id} / ${run.date}": "execution name / scheduled time's date in the schedule's timezone (start date"
            " for manual runs; a runtime Lambda state when the timezone is not UTC)",
            "${params.X} / ${env.X}": "rendered by the runtime Lambda (env: the Lambda's environment)",
            "${secret.X}": "runtime Lambda: AWS Secrets Manager secret pipegen/<X> (PIPEGEN_SECRET_<X> as a fallback); kubernetes: secret as a whole env value",
        },
    )
    options_model = StepFunctionsOptions

    def check(self, pipeline: Pipeline, options: BaseModel) -> list[Diagnostic]:
        """Shared checks plus what Step Functions cannot express."""
        assert isinstance(options, StepFunctionsOptions)
        problems = [*super().check(pipeline, options), *_limits(pipeline, options), *_history(pipeline)]
        if not has_errors(problems):
            problems.extend(_size(pipeline, options))
        return problems

    def render(self, pipeline: Pipeline, options: BaseModel) -> list[Output]:
        """The state machine definition, and the EventBridge schedule when the spec has one."""
        assert isinstance(options, StepFunctionsOptions)
        outputs = [Output(f"stepfunctions/{pipeline.name}.asl.json", _definition_text(pipeline, options))]
        if pipeline.schedule is not None:
            schedule = scheduler_schedule(pipeline, options.state_machine_arn, options.scheduler_role_arn)
            outputs.append(Output(f"stepfunctions/{pipeline.name}.schedule.json", _json(schedule)))
        return outputs


TARGET = StepFunctionsTarget()


def _json(value: Any) -> str:
    """Pretty, deterministic JSON: key order is the order the lowering builds (the order AWS documents)."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


_rendered: dict[tuple[str, str, StepFunctionsOptions], str] = {}


def _definition_text(pipeline: Pipeline, options: StepFunctionsOptions) -> str:
    """The definition as uploaded: one compact line per state, so it stays small and diffs per state."""
    # check() measures what render() writes: build it once per spec content, path and options.
    key = (pipeline.spec_sha256, pipeline.spec_path, options)
    if key not in _rendered:
        _rendered.clear()
        definition = _Lowering(pipeline, options, dialect_for(options.query_language)).definition()
        states = definition.pop("States")
        lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in definition.items()]
        body = ",\n".join(
            f"    {json.dumps(name, ensure_ascii=False)}: {json.dumps(state, ensure_ascii=False, separators=(',', ':'))}"
            for name, state in states.items()
        )
        _rendered[key] = "{\n" + "\n".join(lines) + '\n  "States": {\n' + body + "\n  }\n}\n"
    return _rendered[key]


# ---- checks --------------------------------------------------------------------------------------


def _limits(pipeline: Pipeline, options: StepFunctionsOptions) -> Iterator[Diagnostic]:
    yield from schedule_problems(pipeline)
    for step in pipeline.steps:
        backend = step.backend
        if not isinstance(backend, AwsBatchBackend | SageMakerBackend | KubernetesBackend):
            continue
        body = step.body
        for i, arg in enumerate(body.command):
            secrets = [r for r in parse_template(arg).refs if r.namespace == "secret"]
            if secrets:
                yield diag(
                    "PG602",
                    f"target 'stepfunctions' cannot put {secrets[0]} in the command of job step '{step.name}'",
                    pipeline.locate(step, step.kind, "command", i),
                    "a job's command travels through the execution history; read the secret inside the job",
                )
        env = {**getattr(backend, "env", {}), **body.env}
        for key, value in env.items():
            template = parse_template(value)
            secrets = [r for r in template.refs if r.namespace == "secret"]
            whole = template.single_ref is not None and template.single_ref.namespace == "secret"
            if secrets and not (isinstance(backend, KubernetesBackend) and whole):
                where = (step.kind, "env", key) if key in body.env else ()
                yield diag(
                    "PG602",
                    f"target 'stepfunctions' cannot set {secrets[0]} in job step '{step.name}'"
                    + (" except as a whole environment value" if isinstance(backend, KubernetesBackend) else ""),
                    pipeline.locate(step, *where) if where else step.location,
                    "environment values travel through the execution history; use the job definition's secrets"
                    if not isinstance(backend, KubernetesBackend)
                    else "write the value as exactly ${secret.NAME}",
                )
        if isinstance(backend, KubernetesBackend):
            if options.eks_cluster is None:
                yield diag(
                    "PG604",
                    f"target 'stepfunctions' needs the EKS cluster to run kubernetes step '{step.name}'",
                    pipeline.locate(step, step.kind, "backend"),
                    "set targets: {stepfunctions: {eks_cluster: {name: ..., endpoint: ..., certificate_authority: ...}}}",
                )
            for key in backend.node_selector:
                if key.endswith(".$"):
                    yield diag(
                        "PG602",
                        f"target 'stepfunctions' cannot take node selector key '{key}' (a key ending in '.$' is a path)",
                        pipeline.source_map.key(("backends", str(step.backend_name), "node_selector", key)),
                    )
        # A pod's image sits in the eks:runJob request as written (SageMaker's goes through prepare).
        if isinstance(backend, KubernetesBackend) and parse_template(backend.image).refs:
            yield diag(
                "PG602",
                f"target 'stepfunctions' cannot render ${{...}} in the image of backend '{step.backend_name}'",
                pipeline.source_map.value(("backends", str(step.backend_name), "image")),
                "write the image in full",
            )


# A Standard execution's history holds at most 25,000 events; one check of a wait loop writes 11 (the
# Lambda Task's entered, scheduled, started, succeeded, exited; the Choice's, the Wait's and the counter
# Pass's entered and exited). The rest of the pipeline keeps the margin.
MAX_HISTORY_EVENTS = 25_000
EVENTS_PER_CHECK = 11
HISTORY_MARGIN = 1_000


def _history(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """Wait loops whose checks, at their worst, would pass the execution history's event limit."""
    loops = []
    for step in pipeline.steps:
        wait = (step.gate or {}).get("wait")
        if wait is not None:
            loops.append((wait["timeout_seconds"] // wait["interval_seconds"] + 1, step))
    events = sum(checks * EVENTS_PER_CHECK for checks, _ in loops)
    if loops and events > MAX_HISTORY_EVENTS - HISTORY_MARGIN:
        checks, step = max(loops, key=lambda pair: pair[0])
        yield diag(
            "PG602",
            f"target 'stepfunctions' cannot wait this long this often: the gates' wait loops may make "
            f"{events // EVENTS_PER_CHECK} checks of {EVENTS_PER_CHECK} history events each, over the "
            f"{MAX_HISTORY_EVENTS}-event limit of an execution ('{step.name}' alone makes {checks})",
            pipeline.locate(step, "gate", "wait", "interval"),
            f"check less often: at most {(MAX_HISTORY_EVENTS - HISTORY_MARGIN) // EVENTS_PER_CHECK} checks in all",
        )


def _size(pipeline: Pipeline, options: StepFunctionsOptions) -> Iterator[Diagnostic]:
    """A definition the service would refuse is a diagnostic, never an output."""
    text = _definition_text(pipeline, options)
    size = len(text.encode())
    request = len(json.dumps(text, ensure_ascii=False).encode()) + REQUEST_ROOM
    if size > MAX_DEFINITION_BYTES or request > MAX_REQUEST_BYTES:
        what, limit = (
            (f"the definition takes {size} bytes", MAX_DEFINITION_BYTES)
            if size > MAX_DEFINITION_BYTES
            else (f"the request that uploads it takes about {request} bytes", MAX_REQUEST_BYTES)
        )
        yield diag(
            "PG602",
            f"target 'stepfunctions' cannot hold pipeline '{pipeline.name}' in one state machine: {what}, "
            f"over the service's {limit}",
            pipeline.source_map.value(("name",)),
            "split the pipeline into smaller specs",
        )


# ---- lowering ------------------------------------------------------------------------------------


def _literal(value: Any) -> Any:
    """What spec strings without references mean (`$${` is a literal `${`), for the definition itself."""
    if isinstance(value, list):
        return [_literal(v) for v in value]
    return parse_template(value).literal_text()


def _descendants(pipeline: Pipeline) -> dict[str, set[str]]:
    down: dict[str, set[str]] = {s.name: set() for s in pipeline.steps}
    for step in reversed(pipeline.steps):
        for up in step.upstream:
            down[up] |= {step.name} | down[step.name]
    return down


class _Lowering:
    """Builds the definition as plain dicts; user strings only ever become JSON string values."""

    def __init__(self, pipeline: Pipeline, options: StepFunctionsOptions, dialect: Dialect) -> None:
        self.p = pipeline
        self.o = options
        self.d = dialect
        self.order = [s.name for s in pipeline.steps]
        self.down = _descendants(pipeline)
        skips = [s.name for s in pipeline.steps if s.kind == "evaluate" and s.body.on_fail == "skip"]
        self.skip_ancestors = {s.name: [e for e in skips if s.name in self.down[e]] for s in pipeline.steps}
        self.guarded = {name for name in self.order if self._needs_guard(name)}
        self.fail_entry = NOTIFY_FAILURE if pipeline.spec.notify.on_failure else FAILED
        self.states: dict[str, dict[str, Any]] = {}
        self.uses_done = False

    def _needs_guard(self, name: str) -> bool:
        """A step under a skip-evaluate needs its own check when some step between them is not under it."""
        i = self.order.index(name)
        for e in self.skip_ancestors[name]:
            between = self.order[self.order.index(e) + 1 : i]
            if any(b not in self.down[e] for b in between):
                return True
        return False

    # ---- the definition ---------------------------------------------------------------------
    def definition(self) -> dict[str, Any]:
        spec = self.p.spec
        comment = (spec.description + " " if spec.description else "") + (
            f"Generated by pipegen {'.'.join(__version__.split('.')[:2])} from {self.p.spec_path}"
            f" (sha256 {self.p.spec_sha256}); do not edit."
        )
        evaluations = sorted({e for name in self.guarded for e in self.skip_ancestors[name]}, key=self.order.index)
        sched = self.p.schedule
        local_date = (
            LocalDate(sched.timezone, self.o.runtime_function, (LAMBDA_RETRIER,), FAILED)
            if sched is not None and sched.timezone != "UTC"
            else None
        )
        context = self.d.context_states(dict(sorted(spec.params.items())), evaluations, self._entry(0), local_date)
        self.states.update(context)
        for i, step in enumerate(self.p.steps):
            self._step(i, step)
        self._failure_states()
        if self.uses_done:
            self.states[DONE] = {"Type": "Succeed", "Comment": "Ends the run without the steps an evaluation skipped."}
        return {
            "Comment": comment,
            "QueryLanguage": self.d.name,
            "StartAt": next(iter(context)),
            "States": self.states,
        }

    def _entry(self, i: int) -> str:
        """The first state of the i-th step (its guard when it has one); DONE past the last step."""
        if i >= len(self.order):
            self.uses_done = True
            return DONE
        name = self.order[i]
        return f"{name}.enabled" if name in self.guarded else name

    def _after(self, i: int) -> dict[str, Any]:
        """How the i-th step's last state goes on: to the next step, or the end."""
        return {"Next": self._entry(i + 1)} if i + 1 < len(self.order) else {"End": True}

    def _skip_to(self, i: int, evaluation: str) -> str:
        """Where a failed skip-evaluation (or a skipped step) goes: the next step not under it."""
        for j in range(i + 1, len(self.order)):
            if self.order[j] not in self.down[evaluation]:
                return self._entry(j)
        self.uses_done = True
        return DONE

    # ---- shared state parts -----------------------------------------------------------------
    def _policy(self, step: ResolvedStep, lambda_task: bool) -> dict[str, Any]:
        policy = step.policy
        retry: list[dict[str, Any]] = [LAMBDA_RETRIER] if lambda_task else []
        if policy.retries:
            retrier: dict[str, Any] = {
                "ErrorEquals": ["States.ALL"],
                "IntervalSeconds": max(1, policy.retry_delay),
                "MaxAttempts": policy.retries,
                "BackoffRate": 2.0 if policy.backoff == "exponential" else 1.0,
            }
            if policy.max_retry_delay is not None and policy.backoff == "exponential":
                retrier["MaxDelaySeconds"] = max(1, policy.max_retry_delay)
            retry.append(retrier)
        out: dict[str, Any] = {}
        if policy.timeout is not None:
            # A Lambda invocation ends within 15 minutes whatever the step allows.
            out["TimeoutSeconds"] = min(policy.timeout, LAMBDA_MAX_SECONDS) if lambda_task else policy.timeout
        if retry:
            out["Retry"] = retry
        out["Catch"] = [self.d.catch(self.fail_entry)]
        return out

    def _runtime_task(
        self,
        step: ResolvedStep,
        kind: str,
        spec: dict[str, Any],
        select: dict[str, str],
        store: Slot | None,
        comment: str,
        mlflow_run: str | None = None,
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"kind": kind, "spec": spec, "context": Slot(("pipegen",))}
        if mlflow_run is not None:
            args["mlflow_run"] = Slot(("prepared", mlflow_run, "run"))
        return self._lambda(comment, args, select, store) | self._policy(step, lambda_task=True)

    def _lambda(self, comment: str, args: dict[str, Any], select: dict[str, str], store: Slot | None) -> dict[str, Any]:
        """A Task invoking the runtime's `step` action, keeping the selected Payload fields in store."""
        state: dict[str, Any] = {"Type": "Task", "Comment": comment, "Resource": LAMBDA_INVOKE}
        return state | self.d.task_io(
            {"FunctionName": self.o.runtime_function, "Payload": {"action": "step", "args": args}},
            {key: ("Payload", field) for key, field in select.items()},
            store,
        )

    # ---- per step ---------------------------------------------------------------------------
    def _step(self, i: int, step: ResolvedStep) -> None:
        if step.name in self.guarded:
            evaluations = self.skip_ancestors[step.name]
            condition = self.d.all_of([self.d.is_true(Slot(("evaluations", e, "passed"))) for e in evaluations])
            self.states[f"{step.name}.enabled"] = self.d.choice(
                [(condition, step.name)],
                default=self._skip_to(i, evaluations[-1]),
                comment=f"Run step '{step.name}' only when the evaluations it depends on passed.",
            )
        if step.kind == "gate":
            self._gate(i, step)
        elif step.kind == "evaluate":
            self._evaluate(i, step)
        elif step.kind == "promote":
            self._promote(i, step)
        else:
            self._job(i, step)

    def _gate(self, i: int, step: ResolvedStep) -> None:
        request = {k: v for k, v in (step.gate or {}).items() if k != "wait"}
        wait = (step.gate or {}).get("wait")
        name = step.name
        # Checked once, the runtime fails a failed check; in a wait loop it reports it for the Choice.
        check = self._runtime_task(
            step,
            "gate" if wait is None else "gate_check",
            {"gate": request},
            {"passed": "passed", "reason": "reason"},
            Slot(("gates", name)),
            f"Gate '{name}': check once (a failed check fails the step)."
            if wait is None
            else f"Gate '{name}': one check.",
        )
        if wait is None:
            self.states[name] = check | self._after(i)
            return
        interval, timeout = wait["interval_seconds"], wait["timeout_seconds"]
        attempts = timeout // interval + 1
        self.states[name] = self.d.set_value(
            Slot(("attempts", name)),
            {"count": 1},
            f"Gate '{name}': wait up to {timeout}s, checking every {interval}s ({attempts} checks).",
            f"{name}.check",
        )
        self.states[f"{name}.check"] = check | {"Next": f"{name}.ready"}
        self.states[f"{name}.ready"] = self.d.choice(
            [
                (self.d.is_true(Slot(("gates", name, "passed"))), self._entry(i + 1)),
                (self.d.at_least(Slot(("attempts", name, "count")), attempts), f"{name}.timed_out"),
            ],
            default=f"{name}.wait",
            comment=f"Gate '{name}': go on when ready, give up after {attempts} checks.",
        )
        self.states[f"{name}.wait"] = {"Type": "Wait", "Seconds": interval, "Next": f"{name}.next_attempt"}
        self.states[f"{name}.next_attempt"] = self.d.increment(Slot(("attempts", name)), "count", f"{name}.check")
        self.states[f"{name}.timed_out"] = self.d.failure(
            "pipegen.GateTimeout", Slot(("gates", name, "reason")), self.fail_entry
        )

    def _evaluate(self, i: int, step: ResolvedStep) -> None:
        body = step.body
        spec: dict[str, Any] = {"thresholds": list(body.thresholds), "tracking_uri": self._tracking()}
        if step.champion is not None:
            spec["champion"] = step.champion
        name = step.name
        self.states[name] = self._runtime_task(
            step,
            "evaluate",
            spec,
            {"passed": "passed", "reasons": "reasons"},
            Slot(("evaluations", name)),
            f"Evaluate the run of '{body.run_of}' against its thresholds.",
            mlflow_run=body.run_of,
        ) | {"Next": f"{name}.passed"}
        skip = body.on_fail == "skip"
        # A Choice cannot end a run: past the last step, _entry gives the Succeed state.
        self.states[f"{name}.passed"] = self.d.choice(
            [(self.d.is_true(Slot(("evaluations", name, "passed"))), self._entry(i + 1))],
            default=self._skip_to(i, name) if skip else f"{name}.failed",
            comment="Thresholds not met: "
            + ("skip the steps that depend on this evaluation." if skip else "the run fails."),
        )
        if not skip:
            self.states[f"{name}.failed"] = self.d.failure(
                "pipegen.ThresholdsNotMet", Slot(("evaluations", name, "reasons")), self.fail_entry, as_json=True
            )

    def _promote(self, i: int, step: ResolvedStep) -> None:
        body = step.body
        self.states[step.name] = self._runtime_task(
            step,
            "promote",
            promote_request(self.p, step),
            {"version": "version", "alias_moved": "alias_moved"},
            Slot(("promotions", step.name)),
            f"Register the run of '{body.run_of}' as model '{body.model}' and move alias '{body.alias}'.",
            mlflow_run=body.run_of,
        ) | self._after(i)

    def _tracking(self) -> str:
        return self.p.spec.mlflow.tracking_uri or ""

    # ---- jobs -------------------------------------------------------------------------------
    def _job(self, i: int, step: ResolvedStep) -> None:
        backend = step.backend
        body = step.body
        name = step.name
        env = {**getattr(backend, "env", {}), **body.env}
        secret_env = {}
        if isinstance(backend, KubernetesBackend):
            for key, value in list(env.items()):
                ref = parse_template(value).single_ref
                if ref is not None and ref.namespace == "secret":
                    secret_env[key] = {"secret": kubernetes_name(ref.name), "key": ref.name}
                    del env[key]
        service = (
            "batch"
            if isinstance(backend, AwsBatchBackend)
            else "eks"
            if isinstance(backend, KubernetesBackend)
            else "sagemaker"
        )
        # A Batch command the state machine can build itself needs no Lambda hop (and its bytes).
        native = self._native_command(step, env) if service == "batch" and step.kind != "train" else None
        dynamic = (
            step.kind == "train"
            or service == "sagemaker"
            or (native is None and any(parse_template(v).refs for v in [*body.command, *env.values()]))
        )
        request: dict[str, Any] = {"service": service, "command": list(body.command), "env": dict(sorted(env.items()))}
        if secret_env:
            request["secret_env"] = secret_env
        if isinstance(backend, SageMakerBackend):
            request |= {"image": backend.image, "output_path": backend.output_path, "job_name": f"{self.p.name}-{name}"}
        if step.kind == "train":
            request["start_run"] = {
                "pipeline": self.p.name,
                "step": name,
                "spec_sha256": self.p.spec_sha256,
                "experiment": self.p.experiment,
            }
            request["tracking_uri"] = self._tracking()
        job_state = name
        if dynamic:
            what = "start its MLflow run and render" if step.kind == "train" else "render"
            select = {"job": "job", "run": "run"} if step.kind == "train" else {"job": "job"}
            prepare = self._runtime_task(
                step, "prepare", request, select, Slot(("prepared", name)), f"Step '{name}': {what} the job's command."
            )
            self.states[name] = prepare | {"Next": f"{name}.job"}
            job_state = f"{name}.job"
        job = self._job_state(step, dynamic, request, native)
        self.states[job_state] = job | self._policy(step, lambda_task=False) | self._after(i)

    def _native_command(self, step: ResolvedStep, env: dict[str, str]) -> TextList | None:
        """A command with ${...} as run-time text, when the query language can build it; else None."""
        command = step.body.command
        if any(parse_template(v).refs for v in env.values()) or not any(parse_template(a).refs for a in command):
            return None
        items = []
        for arg in command:
            text = self._text(arg)
            if text is None:
                return None  # the prepare Lambda renders it
            items.append(text)
        return TextList(tuple(items))

    def _text(self, value: str) -> Text | None:
        """${run.*} and ${params.X} (not floats, whose text the languages write differently) inside literal text."""
        parts: list[str | Read] = []
        for part in parse_template(value).parts:
            if isinstance(part, Lit):
                if not self.d.holds_literal(part.text):
                    return None
                parts.append(part.text)
            elif part.namespace == "run":
                parts.append(Read(Slot(("pipegen", "run_date" if part.name == "date" else "run_id"))))
            elif part.namespace == "params" and not isinstance(self.p.spec.params.get(part.name), float):
                parts.append(Read(Slot(("pipegen", "params", part.name)), as_text=True))
            else:
                return None
        return Text(tuple(parts))

    def _job_state(
        self, step: ResolvedStep, dynamic: bool, request: dict[str, Any], native: TextList | None
    ) -> dict[str, Any]:
        # A `.sync` Task that times out (TimeoutSeconds) or whose execution is stopped has Step Functions stop
        # the job it started (batch:TerminateJob, sagemaker:StopTrainingJob, which the state machine's role
        # must allow); a Retry then starts a new job. moto does not model this, so it is not tested here.
        backend = step.backend
        name = step.name
        rendered = Slot(("prepared", name, "job"))
        params: dict[str, Any]
        comment = f"Step '{name}' on backend '{step.backend_name}'."
        if isinstance(backend, AwsBatchBackend):
            overrides: dict[str, Any]
            if dynamic:
                overrides = {"Command": rendered.field("Command"), "Environment": rendered.field("Environment")}
            else:
                overrides = {"Command": native if native is not None else _literal(request["command"])}
                if request["env"]:
                    overrides["Environment"] = [{"Name": k, "Value": _literal(v)} for k, v in request["env"].items()]
            resources = batch_resources(step.body.resources)
            if resources:
                overrides["ResourceRequirements"] = [{"Type": k, "Value": v} for k, v in resources.items()]
            params = {
                "JobName": f"{self.p.name}-{name}",
                "JobQueue": backend.job_queue,
                "JobDefinition": backend.job_definition,
                "ContainerOverrides": overrides,
            }
            return {"Type": "Task", "Comment": comment, "Resource": "arn:aws:states:::batch:submitJob.sync"} | (
                self.d.task_io(params, {}, None)
            )
        if isinstance(backend, SageMakerBackend):
            params = {
                "TrainingJobName": rendered.field("TrainingJobName"),
                "AlgorithmSpecification": rendered.field("AlgorithmSpecification"),
                "Environment": rendered.field("Environment"),
                "RoleArn": backend.role_arn,
                "ResourceConfig": {
                    "InstanceType": backend.instance_type,
                    "InstanceCount": backend.instance_count,
                    "VolumeSizeInGB": 30,
                },
                "OutputDataConfig": rendered.field("OutputDataConfig"),
                "StoppingCondition": {"MaxRuntimeInSeconds": step.policy.timeout or 86400},
            }
            return {
                "Type": "Task",
                "Comment": comment,
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
            } | self.d.task_io(params, {}, None)
        assert isinstance(backend, KubernetesBackend) and self.o.eks_cluster is not None
        container: dict[str, Any] = {"name": "main", "image": parse_template(backend.image).literal_text()}
        if dynamic:
            container |= {"command": rendered.field("command"), "env": rendered.field("env")}
        else:
            container |= {
                "command": _literal(request["command"]),
                "env": [{"name": k, "value": _literal(v)} for k, v in request["env"].items()],
            }
        resources = step.body.resources
        if resources is not None:
            quantities: dict[str, str] = {}
            if resources.cpu is not None:
                quantities["cpu"] = kubernetes_cpu(resources.cpu)
            if resources.memory is not None:
                quantities["memory"] = resources.memory
            if resources.gpu:
                quantities["nvidia.com/gpu"] = str(resources.gpu)
            container["resources"] = {"requests": quantities, "limits": quantities}
        pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
        if backend.service_account:
            pod["serviceAccountName"] = backend.service_account
        if backend.node_selector:
            pod["nodeSelector"] = dict(sorted(backend.node_selector.items()))
        job_name = kubernetes_name(f"{self.p.name}-{name}")[:57]
        params = {
            "ClusterName": self.o.eks_cluster.name,
            "CertificateAuthority": self.o.eks_cluster.certificate_authority,
            "Endpoint": self.o.eks_cluster.endpoint,
            "Namespace": backend.namespace,
            "LogOptions": {"RetrieveLogs": False},
            "Job": {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"generateName": f"{job_name}-"},
                # Step Functions retries the step; the Job itself does not retry.
                "spec": {"backoffLimit": 0, "template": {"spec": pod}},
            },
        }
        return {"Type": "Task", "Comment": comment, "Resource": "arn:aws:states:::eks:runJob.sync"} | self.d.task_io(
            params, {}, None
        )

    # ---- failure ----------------------------------------------------------------------------
    def _failure_states(self) -> None:
        hooks = self.p.spec.notify.on_failure
        if hooks:
            spec = {
                "webhooks": [n.webhook for n in hooks],
                "message": {"pipeline": self.p.name, "event": "failed"},
            }
            args: dict[str, Any] = {
                "kind": "notify",
                "spec": spec,
                "context": Slot(("pipegen",)),
                "failure": Slot(("failure",)),
            }
            state = self._lambda("Tell notify.on_failure that the run failed, then fail.", args, {}, None)
            state["Retry"] = [LAMBDA_RETRIER]
            state["Catch"] = [self.d.catch(FAILED, keep_failure=True)]
            state["Next"] = FAILED
            self.states[NOTIFY_FAILURE] = state
        self.states[FAILED] = self.d.fail_state()
