"""The whole DAG for one pipeline: module parts, DAG arguments, and one task (or two) per step."""

from __future__ import annotations

import itertools

from pipegen.render import py
from pipegen.resolve import ResolvedStep
from pipegen.spec import Notify
from pipegen.targets.airflow.backends import BackendLowering
from pipegen.targets.airflow.closing import closing
from pipegen.targets.airflow.distributed import is_distributed, node_tasks
from pipegen.targets.airflow.resources import ResourceTasks, resource_kind
from pipegen.targets.airflow.spark import connections as spark_connections
from pipegen.targets.airflow.view import Callback, Task, View, kw, sorted_imports, var_name
from pipegen.targets.airflow_expr import JOB_NAME_MACRO, RUN_DATE_MACRO, SECRET_MACRO
from pipegen.targets.base import header_lines

# The run's end, told to the spec's notify lists by DAG-level callbacks: Airflow calls on_success_callback when
# every leaf task succeeded or was skipped (an evaluation's `on_fail: skip` included), as `pipegen run` does.
CALLBACKS = (Callback("failure", "failed", "failed"), Callback("success", "succeeded", "successful"))


class Lowering(BackendLowering):
    """Builds the View for one pipeline."""

    # ---- module parts ----------------------------------------------------------------------
    def view(self) -> View:
        spec = self.p.spec
        tasks, edges = self.tasks()
        header = header_lines(self.p)
        constants = [
            ("PIPELINE", py(self.p.name)),
            ("SPEC_SHA256", py(self.p.spec_sha256)),
            ("EXPERIMENT", py(self.p.experiment)),
            # Rendered by Airflow in each runtime task; empty means the worker's MLFLOW_TRACKING_URI.
            ("TRACKING_URI", self.tracking_uri()),
        ]
        callbacks = [c for c in CALLBACKS if self.notify_list(c)]
        constants += [(c.webhooks, self.webhooks(c)) for c in callbacks]
        dag_kwargs = self.dag_kwargs()
        if self.helpers & {"run_date", "timezone"}:
            # ${run.date} is the date in the schedule's timezone, as on every target.
            constants.append(("TIMEZONE", py(self.p.schedule.timezone if self.p.schedule else "UTC")))
        if self.helpers - {"run_date", "job_name", "secret", "timezone", "close_run"}:
            # Only when used: `task` is lazy in airflow.sdk and its first use imports ~25 modules, which
            # every forked parse of the DAG processor would pay (see BENCHMARKS.md).
            self.imports.add("from airflow.sdk import task")
        return View(
            header=header,
            docstring=py(spec.description or f"The {self.p.name} pipeline."),
            imports=sorted_imports(self.imports),
            constants=constants,
            helpers=self.helpers,
            default_args=self.default_args(),
            dag_kwargs=dag_kwargs,
            tasks=tasks,
            edges=edges,
            callbacks=callbacks,
            connections=spark_connections(self.p),
        )

    def default_args(self) -> list[tuple[str, str]]:
        policy = self.default_policy
        out = [("owner", py(self.p.spec.owner or "pipegen"))]
        out += self.policy_kwargs(policy, None)
        return out

    def dag_kwargs(self) -> list[tuple[str, str]]:
        spec = self.p.spec
        sched = self.p.schedule
        out = [("dag_id", py(self.p.name))]
        lines = (spec.description or "").strip().splitlines()
        if lines:
            out.append(("description", py(lines[0].strip())))
            # Airflow reads doc_md as a file path when it ends with '.md': a description is text, always.
            doc = spec.description or ""
            out.append(("doc_md", py(doc + "\n" if doc.endswith(".md") else doc)))
        if sched is None:
            out.append(("schedule", "None"))
        else:
            out.append(("schedule", py(sched.preset or sched.cron)))
            if sched.start is not None:
                self.imports.add("import pendulum")
                s = sched.start
                out.append(("start_date", f"pendulum.datetime({s.year}, {s.month}, {s.day}, tz={py(sched.timezone)})"))
            elif sched.timezone != "UTC":
                self.imports.add("from airflow.sdk import CronTriggerTimetable")
                out[-1] = ("schedule", f"CronTriggerTimetable({py(sched.cron)}, timezone={py(sched.timezone)})")
            out.append(("catchup", py(sched.catchup)))
        if spec.tags:
            out.append(("tags", py(sorted(set(spec.tags)))))
        if spec.params:
            self.imports.add("from airflow.sdk import Param")
            kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
            params = ", ".join(
                f"{py(k)}: Param({py(v)}, type={py(kinds[type(v)])})" for k, v in sorted(spec.params.items())
            )
            out.append(("params", "{" + params + "}"))
        out.append(("default_args", "default_args"))
        macros = []
        if "import os" in self.imports:
            macros.append('"env_var": lambda name: os.environ.get(name, "")')
        if "run_date" in self.helpers:
            macros.append(f'"{RUN_DATE_MACRO}": _run_date')
        if "secret" in self.helpers:
            macros.append(f'"{SECRET_MACRO}": _secret')
        if "job_name" in self.helpers:
            macros.append(f'"{JOB_NAME_MACRO}": _job_name')
        if macros:
            out.append(("user_defined_macros", "{" + ", ".join(macros) + "}"))
        out += [(f"on_{c.word}_callback", c.function) for c in CALLBACKS if self.notify_list(c)]
        return out

    # ---- steps -----------------------------------------------------------------------------
    def tasks(self) -> tuple[list[Task], list[str]]:
        tasks: list[Task] = []
        edges: list[str] = []
        first_of: dict[str, str] = {}
        last_of: dict[str, str] = {}
        for step in self.p.steps:
            made = getattr(self, f"_{step.kind}")(step)
            tasks.extend(made)
            # A teardown (a step's cleanup) is not what the next steps wait for: they wait for the work.
            work = [t for t in made if not t.teardown_of]
            first_of[step.name], last_of[step.name] = made[0].var, work[-1].var
            edges.extend(f"{last_of[up]} >> {made[0].var}" for up in step.upstream)
            edges.extend(
                f"{a.var} >> {b.var}.as_teardown(setups={b.teardown_of})" if b.teardown_of else f"{a.var} >> {b.var}"
                for a, b in itertools.pairwise(made)
            )
        return tasks, edges

    def _gate(self, step: ResolvedStep) -> list[Task]:
        assert step.gate is not None
        request = {k: v for k, v in step.gate.items() if k != "wait"}
        # The gate goes to the task as written, untouched by Jinja: the runtime renders its references there,
        # a query's as bind parameters (runtime.sqlparams), and reads ${secret.X} from Variables it masks.
        self.imports.add("from airflow.sdk import literal")
        self.helpers.add("timezone")
        gate_dict = f"literal({py(request)})"
        kwargs = [("task_id", py(step.name)), *self._policy(step)]
        wait = step.gate.get("wait")
        if wait is not None:
            self.helpers.add("wait_for_gate")
            kwargs += [("poke_interval", py(wait["interval_seconds"])), ("timeout", py(wait["timeout_seconds"]))]
            call = "_wait_for_gate.override"
        else:
            self.helpers.add("check_gate")
            call = "_check_gate.override"
        return [Task(var_name(step.name), f"{call}({kw(kwargs)})", [("gate", gate_dict)])]

    def _start_run(self, step: ResolvedStep) -> Task:
        self.helpers.add("start_run")
        var = var_name(f"pipegen_start_run_{step.name}")
        return Task(
            var,
            f"_start_run.override(task_id={py('pipegen_start_run_' + step.name)})",
            [("step", py(step.name)), ("run_key", py("{{ run_id }}")), ("tracking_uri", "TRACKING_URI")],
        )

    def _train(self, step: ResolvedStep) -> list[Task]:
        run = self._start_run(step)
        if resource_kind(step) is not None:
            work = ResourceTasks(self, step, run).tasks()
        elif is_distributed(step):
            work = node_tasks(self, step, run)
        else:
            work = [self._command_task(step, run)]
        # The job may die without ending the run (OOM kill, lost node): its tasks' callbacks end it.
        return [run, *closing(self, step, work)]

    def _task(self, step: ResolvedStep) -> list[Task]:
        if resource_kind(step) is not None:
            return ResourceTasks(self, step, None).tasks()
        if is_distributed(step):
            return node_tasks(self, step, None)
        return [self._command_task(step, None)]

    def _evaluate(self, step: ResolvedStep) -> list[Task]:
        body = step.body
        helper = "evaluate_or_skip" if body.on_fail == "skip" else "evaluate_or_fail"
        self.helpers.add(helper)
        champion = self.literal(step.champion)
        kwargs = [
            ("run", var_name(f"pipegen_start_run_{body.run_of}")),
            ("thresholds", self.literal(list(body.thresholds))),
            ("champion", champion),
            ("tracking_uri", "TRACKING_URI"),
        ]
        return [
            Task(
                var_name(step.name),
                f"_{helper}.override({kw([('task_id', py(step.name)), *self._policy(step)])})",
                kwargs,
            )
        ]

    def _promote(self, step: ResolvedStep) -> list[Task]:
        self.helpers.add("promote")
        body = step.body
        champion = self.literal(step.champion)
        kwargs = [
            ("run", var_name(f"pipegen_start_run_{body.run_of}")),
            ("model", self.literal(body.model)),
            ("alias", self.literal(body.alias)),
            ("artifact", self.lit(body.artifact)),
            ("champion", champion),
            ("thresholds", self.literal(list(step.judged_by))),
            ("webhooks", "[" + ", ".join(self.value(n.webhook) for n in body.notify) + "]"),
            ("tracking_uri", "TRACKING_URI"),
        ]
        return [
            Task(
                var_name(step.name),
                f"_promote.override({kw([('task_id', py(step.name)), *self._policy(step)])})",
                kwargs,
            )
        ]

    def notify_list(self, callback: Callback) -> list[Notify]:
        """The spec's notify.on_<word> webhooks."""
        hooks: list[Notify] = getattr(self.p.spec.notify, f"on_{callback.word}")
        return hooks

    def webhooks(self, callback: Callback) -> str:
        """The callback's webhook URLs as Airflow templates (rendered in the callback, secrets through _secret)."""
        return "[" + ", ".join(self.value(n.webhook) for n in self.notify_list(callback)) + "]"
