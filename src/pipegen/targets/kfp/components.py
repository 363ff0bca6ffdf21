"""The runtime's components: one per runtime action, defined once in the module and called by every step.

A step's own settings travel as the constant `spec` input (its JSON, braces escaped), never as code: the kfp
compiler copies a component's definition into the IR once per task, so a shared definition keeps the IR per
step small. Two forms (targets.kfp.runtime_components): `python`, lightweight components that kfp's executor
runs (and kfp.local's SubprocessRunner too), and `container`, container components that run
`python -m pipegen.runtime.kfp_executor` on the runtime image (no kfp, no pip install at start, the smallest IR).
"""

from __future__ import annotations

from pipegen.render import py
from pipegen.resolve import Pipeline
from pipegen.targets.kfp.names import MLFLOW_INPUTS, RUN_DATE, RUN_KEY, SPEC, WAIT_STARTED
from pipegen.targets.kfp.options import KfpOptions
from pipegen.targets.kfp.view import Component

# What each action's component is called; a training step's command runs in the run start_run made.
_DOCS = {
    "gate": "A gate step: checks its condition (a wait polls inside the task).",
    "evaluate": "An evaluate step: judges the training run; dsl.If reads the answer.",
    "promote": "A promote step: registers the training run's model and moves the alias.",
    "local": "A step whose command runs in this task's container.",
    "aws_batch": "A step that submits its AWS Batch job and waits for it.",
    "sagemaker": "A step that creates its SageMaker training job and waits for it.",
    "spark": "A step that runs its Spark application (spark-submit, or a job on EMR, EMR Serverless, EMR on EKS or "
    "Glue) and waits for it.",
    "kubernetes_resource": "A step that creates its Kubernetes objects (SparkApplication, RayJob, Indexed Job, JobSet "
    "or TrainJob), waits for their outcome and deletes them.",
    "ray": "A step that submits its Ray job to the cluster's job server and waits for it.",
}


def action_name(kind: str, mlflow: bool) -> str:
    """The component function of a runtime action (a training step's command is its own action)."""
    return f"pipegen_{kind}_train" if mlflow and kind not in ("evaluate", "promote") else f"pipegen_{kind}"


class RuntimeComponents:
    """The part of the lowering that writes the runtime's components, each once, in the order steps need them."""

    p: Pipeline
    options: KfpOptions
    param_names: list[str]
    actions: dict[str, Component]

    @property
    def _container_form(self) -> bool:
        return self.options.runtime_components == "container"

    def _common_inputs(self) -> list[tuple[str, str]]:
        return [(RUN_KEY, "str"), (RUN_DATE, "str")] + [
            (name, {bool: "bool", int: "int", float: "float", str: "str"}[type(self.p.spec.params[name])])
            for name in self.param_names
        ]

    def _params_dict(self) -> str:
        return "{" + ", ".join(f"{py(n)}: {n}" for n in self.param_names) + "}"

    def _use_action(self, kind: str, mlflow: bool) -> str:
        """The component for kind (defined on first use); returns its function name."""
        name = action_name(kind, mlflow)
        if name not in self.actions:
            self.actions[name] = self._action_component(name, kind, mlflow)
        return name

    def _action_component(self, name: str, kind: str, mlflow: bool) -> Component:
        inputs = [(SPEC, "str"), *self._common_inputs()]
        if self._container_form:
            inputs = self._without_run(inputs)
        if mlflow:
            inputs += [(n, "str") for n in MLFLOW_INPUTS]
        if kind == "gate":
            # Only a waiting gate gets its clock task's time (Lowering._gate); the others leave it empty.
            inputs.append((WAIT_STARTED, "str = ''"))
        doc = py(_DOCS[kind] if not mlflow or kind in ("evaluate", "promote") else _DOCS[kind] + " It trains.")
        if self._container_form:
            return self._container_action(name, kind, inputs, doc, [("passed", "bool")] if kind == "evaluate" else [])
        # evaluate answers with one bool (dsl.If reads it; kfp.local cannot branch on a NamedTuple field).
        return self._python_action(name, kind, inputs, "bool" if kind == "evaluate" else "None", doc)

    def _python_action(
        self, name: str, action: str, inputs: list[tuple[str, str]], returns: str, doc: str, zone: str | None = None
    ) -> Component:
        """A lightweight component handing its arguments to the runtime (the container form's entry point too).

        Its source is copied into the IR once per task: it stays three lines, the runtime holds the logic.
        """
        call = f"run_python({py(action)}, arguments" + (f", zone={py(zone)})" if zone is not None else ")")
        body = [
            "arguments = dict(locals())  # first, while the function's locals are its arguments only",
            "from pipegen.runtime.kfp_executor import run_python",
            "",
            f"return {call}",
        ]
        return Component(name, "lightweight", inputs, returns, doc, body)

    def _container_action(
        self,
        name: str,
        action: str,
        inputs: list[tuple[str, str]],
        doc: str,
        outputs: list[tuple[str, str]],
    ) -> Component:
        """A container component handing kfp's executor input (`{{$}}`: typed values, output paths) to the runtime.

        Only outputs a task reads are declared: a step's result stays in its log, not in the IR and ML Metadata.
        """
        signature = [*inputs, *((n, f"dsl.OutputPath({kind})") for n, kind in outputs)]
        command = ["'python'", "'-m'", "'pipegen.runtime.kfp_executor'", py(action)]
        if self._timezone() != "UTC":
            # ${run.date} is a date in the schedule's zone: an IANA name (checked), no spec text kfp would read.
            command += ["'--zone'", py(self._timezone())]
        # kfp hands numbers as JSON numbers (an int 400 may arrive as 400.0, a float 2.0 as 2): their types.
        numbers = [f"{n}:{t}" for n, t in inputs if n in self.param_names and t in ("int", "float")]
        if numbers:
            command += ["'--numbers'", py(",".join(numbers))]
        body = [
            "return dsl.ContainerSpec(",
            "    image=BASE_IMAGE,",
            f"    command=[{', '.join(command)}],",
            "    args=RUNTIME_ARGS,",
            ")",
        ]
        return Component(name, "container", signature, "dsl.ContainerSpec", doc, body)

    @staticmethod
    def _without_run(inputs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """A container action's inputs: the run's id and date come from its arguments (RUNTIME_ARGS), not a task."""
        return [(n, t) for n, t in inputs if n not in (RUN_KEY, RUN_DATE, "pipegen_schedule_time")]

    def _timezone(self) -> str:
        """The zone ${run.date} is a date in: the schedule's (UTC without a schedule)."""
        return self.p.schedule.timezone if self.p.schedule is not None else "UTC"

    def _clock_component(self) -> Component:
        doc = py("When a waiting gate's wait begins (epoch seconds): the anchor its retries resume from.")
        if self._container_form:
            return self._container_action("pipegen_clock", "clock", [], doc, [("started", "str")])
        return self._python_action("pipegen_clock", "clock", [], "str", doc)

    def _start_run_component(self) -> Component:
        # Not the tracking URI (it may hold credentials): output parameters are stored and shown as plain data.
        doc = py("Create (or, on a retry, find) the MLflow run a training step logs into.")
        inputs = [(SPEC, "str"), *self._common_inputs()]
        outputs = [("run_id", "str"), ("experiment_id", "str")]
        if self._container_form:
            return self._container_action("pipegen_start_run", "start_run", self._without_run(inputs), doc, outputs)
        return self._python_action("pipegen_start_run", "start_run", inputs, _named_tuple(outputs), doc)

    def _context_component(self) -> Component:
        doc = py("The run's id and logical date (${run.id}, ${run.date}).")
        inputs = [(RUN_KEY, "str"), ("pipegen_schedule_time", "str")]
        outputs = [("run_id", "str"), ("run_date", "str")]
        zone = self._timezone()
        if self._container_form:
            return self._container_action("pipegen_context", "context", [], doc, outputs)
        return self._python_action("pipegen_context", "context", inputs, _named_tuple(outputs), doc, zone)


def _named_tuple(fields: list[tuple[str, str]]) -> str:
    """A lightweight component's return annotation for several output parameters."""
    return "NamedTuple('Outputs', [" + ", ".join(f"({py(n)}, {t})" for n, t in fields) + "])"
