"""notify.on_failure / notify.on_success: an exit task, run by dsl.ExitHandler around the steps, posts how the run ended."""

from __future__ import annotations

from pipegen.expr import parse_template
from pipegen.render import py
from pipegen.resolve import Pipeline
from pipegen.targets.kfp.components import RuntimeComponents
from pipegen.targets.kfp.names import RUN_KEY, escaped_json
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

    def _notify_component(self) -> Component:
        """The exit task: which webhooks the final state calls for, told through run_step('notify')."""
        hooks = self.p.spec.notify
        spec = {
            "pipeline": self.p.name,
            "failed": [n.webhook for n in hooks.on_failure],
            "succeeded": [n.webhook for n in hooks.on_success],
        }
        inputs = [(RUN_KEY, "str")] + [(n, t) for n, t in self._common_inputs() if n in self.param_names]
        run_date = "''"
        if self._reads_run_date():
            # kfp.local leaves this placeholder unresolved: only a webhook that reads ${run.date} takes it.
            inputs.append((SCHEDULE_TIME, "str"))
            run_date = f"run_date_from({SCHEDULE_TIME}, {py(self._timezone())})"
        inputs.append((STATUS, "dsl.PipelineTaskFinalStatus"))
        body = [
            "from pipegen.runtime.step import decode, run_date_from, run_step",
            "",
            f"spec = decode({py(escaped_json(spec))})",
            f"state = {STATUS}.state",
            f"print(f'pipeline run ended {{state}}: {{{STATUS}.error_message or \"no error\"}}')",
            "# FAILED, or SUCCEEDED (kfp.local, Vertex AI) / COMPLETE (the KFP backend). A cancelled run was stopped",
            "# on purpose: nobody is told, as when `pipegen run` is interrupted or a Step Functions execution",
            "# stopped. Any other state is told as a failure rather than dropped.",
            "if state in ('CANCELED', 'CANCELLED', 'CANCELING'):",
            "    return",
            "event = 'succeeded' if state in ('SUCCEEDED', 'COMPLETE') else 'failed'",
            "if not spec[event]:",
            "    return",
            f"message = {{'pipeline': spec['pipeline'], 'event': event, 'run': {RUN_KEY}}}",
            "try:",
            "    run_step(",
            "        'notify',",
            "        {'webhooks': spec[event], 'message': message},",
            f"        params={self._params_dict()},",
            f"        run_id={RUN_KEY},",
            f"        run_date={run_date},",
            "    )",
            "except Exception as exc:  # a failed alert must not change how the run ended (as `pipegen run`)",
            "    print(f'pipeline notification failed: {exc}')",
        ]
        doc = f"Post how pipeline '{self.p.name}' ended to notify.on_failure or notify.on_success."
        return Component(NOTIFY, "lightweight", inputs, "None", py(doc), body)

    def _notify_call(self) -> Call:
        """The exit task, created before the ExitHandler that runs it after every step."""
        kwargs = [(RUN_KEY, "dsl.PIPELINE_JOB_ID_PLACEHOLDER")] + [(n, n) for n in self.param_names]
        if self._reads_run_date():
            kwargs.append((SCHEDULE_TIME, "dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER"))
        secrets = {name for namespace, name in notify_refs(self.p) if namespace == "secret"}
        settings = [f"{NOTIFY_TASK}.set_caching_options(False)", *self._runtime_secret_env(NOTIFY_TASK, secrets)]
        return Call(NOTIFY_TASK, NOTIFY, kwargs, settings)

    def _exit_handler(self) -> str:
        """The `with` line the steps run under; the group shows the pipeline's name in the KFP UI."""
        return f"with dsl.ExitHandler({NOTIFY_TASK}, name={py(self.p.name)}):"
