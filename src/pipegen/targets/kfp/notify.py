"""notify.on_failure / notify.on_success: an exit task, run by dsl.ExitHandler around the steps, posts how the run ended."""

from __future__ import annotations

from pipegen.expr import parse_template
from pipegen.render import py
from pipegen.resolve import Pipeline
from pipegen.targets.kfp.components import RuntimeComponents
from pipegen.targets.kfp.names import RUN_KEY, SPEC, escaped_json
from pipegen.targets.kfp.settings import TaskSettings
from pipegen.targets.kfp.view import Call, Component

NOTIFY = "pipegen_notify"
NOTIFY_TASK = "pipegen_notify_task"
# The exit task's PipelineTaskFinalStatus input: under the reserved prefix, so no pipeline parameter takes its name.
STATUS = "pipegen_status"
SCHEDULE_TIME = "pipegen_schedule_time"


def webhooks(pipeline: Pipeline) -> list[str]:
    """Every pipeline-level webhook (on_failure, then on_success), as the spec wrote it."""
    hooks = pipeline.spec.notify
    return [n.webhook for n in (*hooks.on_failure, *hooks.on_success)]


def notify_refs(pipeline: Pipeline) -> set[tuple[str, str]]:
    """The (namespace, name) references the pipeline-level webhooks hold."""
    return {(r.namespace, r.name) for url in webhooks(pipeline) for r in parse_template(url).refs}


class ExitNotification(RuntimeComponents, TaskSettings):
    """The part of the lowering that writes the exit task.

    kfp runs an exit task that depends on no task, so it can take no task's output: it takes the job id (the run
    key every task gets) and the schedule time placeholders itself, as pipegen_context does.
    """

    def _reads_run_date(self) -> bool:
        return ("run", "date") in notify_refs(self.p)

    def _notify_spec(self) -> dict[str, object]:
        hooks = self.p.spec.notify
        return {
            "pipeline": self.p.name,
            "failed": [n.webhook for n in hooks.on_failure],
            "succeeded": [n.webhook for n in hooks.on_success],
        }

    def _notify_component(self) -> Component:
        """The exit task: which webhooks the final state calls for (pipegen.runtime.kfp_executor decides)."""
        inputs = [(SPEC, "str"), (RUN_KEY, "str")]
        inputs += [(n, t) for n, t in self._common_inputs() if n in self.param_names]
        if self._reads_run_date():
            # kfp.local leaves this placeholder unresolved: only a webhook that reads ${run.date} takes it.
            inputs.append((SCHEDULE_TIME, "str"))
        inputs.append((STATUS, "dsl.PipelineTaskFinalStatus"))
        doc = py(f"Post how pipeline '{self.p.name}' ended to notify.on_failure or notify.on_success.")
        if self._container_form:
            return self._container_action(NOTIFY, "notify", self._without_run(inputs), doc, [])
        return self._python_action(NOTIFY, "notify", inputs, "None", doc, self._timezone())

    def _notify_call(self) -> Call:
        """The exit task, created before the ExitHandler that runs it after every step."""
        kwargs = [(SPEC, py(escaped_json(self._notify_spec(), compact=True)))]
        kwargs += [(RUN_KEY, "dsl.PIPELINE_JOB_ID_PLACEHOLDER")] + [(n, n) for n in self.param_names]
        if self._container_form:
            kwargs = [kv for kv in kwargs if kv[0] != RUN_KEY]  # RUNTIME_ARGS
        elif self._reads_run_date():
            kwargs.append((SCHEDULE_TIME, "dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER"))
        secrets = {name for namespace, name in notify_refs(self.p) if namespace == "secret"}
        settings = [f"{NOTIFY_TASK}.set_caching_options(False)", *self._runtime_secret_env(NOTIFY_TASK, secrets)]
        return Call(NOTIFY_TASK, NOTIFY, kwargs, settings)

    def _exit_handler(self) -> str:
        """The `with` line the steps run under; the group shows the pipeline's name in the KFP UI."""
        return f"with dsl.ExitHandler({NOTIFY_TASK}, name={py(self.p.name)}):"
