"""Argo's text for the values a step reads at run time: parameters, the run's id and date, start_run's result."""

from __future__ import annotations

from pipegen.expr import Lit, Ref, parse_template
from pipegen.targets.argo.names import CONTEXT, kubelet_text, start_run_name


def param(name: str) -> str:
    """A workflow parameter as Argo substitutes it (its value is not substituted again)."""
    return "{{workflow.parameters." + name + "}}"


def input_param(name: str) -> str:
    """A template's input parameter: what a shared template reads of the task's arguments."""
    return "{{inputs.parameters." + name + "}}"


def result_field(task: str, field: str) -> str:
    """One field of a runtime task's JSON result (its output parameter `result`), as an Argo expression."""
    return "{{=jsonpath(tasks['" + task + "'].outputs.parameters.result, '$." + field + "')}}"


RUN_ID = "{{workflow.name}}"
# The run's date as the DAG computes it (a task output: only a DAG task's arguments or `when` may read one, so a
# template reads it as its input RUN_DATE_INPUT).
RUN_DATE = result_field(CONTEXT, "run_date")
RUN_DATE_INPUT = "run-date"
SCHEDULED = "{{workflow.scheduledTime}}"


def kubelet_param(name: str) -> str:
    """A workflow parameter in a container's args or env: its submitted value with every '$' doubled (expr's replace).

    The kubelet reads '$$' as '$', so a value holding `$(VAR)` reaches the container as written instead of as VAR's
    value; a number or a boolean holds no '$' and is unchanged.
    """
    return "{{=replace(workflow.parameters." + name + ", '$', '$$')}}"


def run_value(ref: Ref) -> str:
    """Argo's text for ${params.X}, ${run.id} or ${run.date} in a container's args or env."""
    if ref.namespace == "params":
        return kubelet_param(ref.name)
    assert ref.namespace == "run", ref  # checks.containers refuses env and secret references here
    return RUN_ID if ref.name == "id" else input_param(RUN_DATE_INPUT)


def container_text(text: str) -> str:
    """A spec string as a container arg or env value: literal parts kept from the kubelet, references as Argo's.

    checks.containers refuses '{{' in literal parts (Argo has no escape for it).
    """
    out = []
    for part in parse_template(text).parts:
        out.append(kubelet_text(part.text) if isinstance(part, Lit) else run_value(part))
    return "".join(out)


def mlflow_run(step: str) -> str:
    """start_run's whole JSON result, spliced into a runtime argument as the step's `mlflow_run` object."""
    return "{{tasks." + start_run_name(step) + ".outputs.parameters.result}}"
