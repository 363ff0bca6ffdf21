"""A kubernetes training step's closer: the task that ends the MLflow run its container left RUNNING.

The step's container runs the user's image, not the runtime: when it dies (OOM kill, lost node, deadline) or never
ends the run, nothing else would. The closer runs after the step's task whatever its outcome (kfp's
`.ignore_upstream_failure()`) and reads that outcome (a `dsl.PipelineTaskFinalStatus` input, which kfp 2.17 allows
on such a task when it depends on exactly one task), then calls the runtime's close_run: FAILED when the task
failed, FINISHED when it succeeded, unless the job ended the run itself.

Not a `dsl.ExitHandler` per step: kfp allows exit handlers only at the pipeline's outermost scope, never nested
(notify.on_failure already holds the whole body), and an exit task may take no task's output. For the same reason
the closer takes no output of start_run's task either (a second dependency): it finds the run again as a retried
start_run does, by the run key (the job's id, `dsl.PIPELINE_JOB_ID_PLACEHOLDER`) and the step's name.
"""

from __future__ import annotations

from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.targets.kfp.components import RuntimeComponents
from pipegen.targets.kfp.names import RUN_KEY, SPEC, escaped_json, ident
from pipegen.targets.kfp.notify import STATUS
from pipegen.targets.kfp.settings import TaskSettings
from pipegen.targets.kfp.view import Call, Component

CLOSE_RUN = "pipegen_close_run"


class RunClosers(RuntimeComponents, TaskSettings):
    """The part of the lowering that writes the closer component and each kubernetes training step's closer."""

    p: Pipeline
    actions: dict[str, Component]

    def _close_run_component(self) -> Component:
        doc = py("End the MLflow run a training step's container left RUNNING: FAILED or FINISHED, as the task ended.")
        inputs = [(SPEC, "str"), (RUN_KEY, "str")]
        inputs += [(n, t) for n, t in self._common_inputs() if n in self.param_names]
        inputs.append((STATUS, "dsl.PipelineTaskFinalStatus"))
        if self._container_form:
            return self._container_action(CLOSE_RUN, "close_run", self._without_run(inputs), doc, [])
        return self._python_action(CLOSE_RUN, "close_run", inputs, "None", doc)

    def _close_run_call(self, step: ResolvedStep, start: dict[str, object], task_var: str) -> Call:
        """The closer of a training step's task: after it, whatever its outcome; its one upstream task."""
        if CLOSE_RUN not in self.actions:
            self.actions[CLOSE_RUN] = self._close_run_component()
        var = f"{ident(step.name)}_close"
        kwargs = [(SPEC, py(escaped_json(start, compact=True)))]
        if not self._container_form:
            # Not run_key (the context task's output): a second upstream task kfp refuses with a final status.
            kwargs.append((RUN_KEY, "dsl.PIPELINE_JOB_ID_PLACEHOLDER"))
        kwargs += [(n, n) for n in self.param_names]
        settings = [
            f"{var}.set_display_name({py(step.name + ' close')})",
            f"{var}.set_caching_options(False)",
            *self._mlflow_env(var),
            *self._runtime_secret_env(var, self._tracking_secrets()),
            f"{var}.after({task_var})",
            f"{var}.ignore_upstream_failure()",
        ]
        return Call(var, CLOSE_RUN, kwargs, settings, step=step.name)
