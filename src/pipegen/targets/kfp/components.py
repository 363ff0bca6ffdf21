"""The lightweight components that run pipegen's runtime: one per runtime step, plus context, clock and start_run."""

from __future__ import annotations

from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.targets.kfp.names import MLFLOW_INPUTS, RUN_DATE, RUN_KEY, escaped_json, ident
from pipegen.targets.kfp.view import Component


class RuntimeComponents:
    """The part of the lowering that writes runtime component functions (their bodies call pipegen.runtime.step)."""

    p: Pipeline
    param_names: list[str]

    def _common_inputs(self) -> list[tuple[str, str]]:
        return [(RUN_KEY, "str"), (RUN_DATE, "str")] + [
            (name, {bool: "bool", int: "int", float: "float", str: "str"}[type(self.p.spec.params[name])])
            for name in self.param_names
        ]

    def _params_dict(self) -> str:
        return "{" + ", ".join(f"{py(n)}: {n}" for n in self.param_names) + "}"

    def _runtime_component(
        self,
        step: ResolvedStep,
        kind: str,
        spec: dict[str, object],
        mlflow: bool,
        extra: tuple[tuple[str, str, str], ...] = (),
        literals: tuple[tuple[str, str], ...] = (),
    ) -> Component:
        """A lightweight component calling run_step.

        extra: (input name, type, run_step keyword) triples; literals: (run_step keyword, Python source) pairs.
        """
        inputs = self._common_inputs() + ([(n, "str") for n in MLFLOW_INPUTS] if mlflow else [])
        inputs += [(name, kind_) for name, kind_, _ in extra]
        mlflow_arg = ""
        if mlflow:
            mlflow_arg = (
                ",\n        mlflow_run={'run_id': pipegen_mlflow_run_id, 'experiment_id': pipegen_mlflow_experiment_id}"
            )
        # evaluate answers with one bool (dsl.If reads it; kfp.local cannot branch on a NamedTuple field);
        # the other steps return their JSON result.
        returns = "bool" if kind == "evaluate" else "str"
        ret = "return bool(result['passed'])" if kind == "evaluate" else "return json.dumps(result, sort_keys=True)"
        body = [
            *([] if kind == "evaluate" else ["import json", ""]),
            "from pipegen.runtime.step import run_step",
            "",
            "result = run_step(",
            f"    {py(kind)},",
            f"    {py(escaped_json(spec))},",
            f"    params={self._params_dict()},",
            f"    run_id={RUN_KEY},",
            f"    run_date={RUN_DATE}{mlflow_arg},",
            *(f"    {keyword}={name}," for name, _, keyword in extra),
            *(f"    {keyword}={source}," for keyword, source in literals),
            ")",
            ret,
        ]
        doc = f"{step.kind} step '{step.name}' of pipeline '{self.p.name}', run by pipegen.runtime."
        return Component(ident(step.name), "lightweight", inputs, returns, py(doc), body)

    def _timezone(self) -> str:
        """The zone ${run.date} is a date in: the schedule's (UTC without a schedule)."""
        return self.p.schedule.timezone if self.p.schedule is not None else "UTC"

    def _clock_component(self) -> Component:
        body = ["import time", "", "return repr(time.time())"]
        doc = "When a waiting gate's wait begins (epoch seconds): the anchor its retries resume from."
        return Component("pipegen_clock", "lightweight", [], "str", py(doc), body)

    def _start_run_component(self) -> Component:
        # Not the tracking URI (it may hold credentials): output parameters are stored and shown as plain data.
        returns = "NamedTuple('Outputs', [('run_id', str), ('experiment_id', str)])"
        body = [
            "from collections import namedtuple",
            "",
            "from pipegen.runtime.step import run_step",
            "",
            f"run = run_step('start_run', spec, params={self._params_dict()}, run_id=pipegen_run_key, run_date=pipegen_run_date)",
            "return namedtuple('Outputs', ['run_id', 'experiment_id'])(run['run_id'], run['experiment_id'])",
        ]
        inputs = [("spec", "str"), *self._common_inputs()]
        return Component(
            "pipegen_start_run",
            "lightweight",
            inputs,
            returns,
            py("Create (or, on a retry, find) the MLflow run a training step logs into."),
            body,
        )

    def _context_component(self) -> Component:
        returns = "NamedTuple('Outputs', [('run_id', str), ('run_date', str)])"
        body = [
            "from collections import namedtuple",
            "",
            "from pipegen.runtime.step import run_date_from",
            "",
            "return namedtuple('Outputs', ['run_id', 'run_date'])(",
            f"    pipegen_run_key, run_date_from(pipegen_schedule_time, {py(self._timezone())})",
            ")",
        ]
        return Component(
            "pipegen_context",
            "lightweight",
            [(RUN_KEY, "str"), ("pipegen_schedule_time", "str")],
            returns,
            py("The run's id and logical date (${run.id}, ${run.date})."),
            body,
        )
