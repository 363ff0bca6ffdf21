"""Spec references resolved inside a running Airflow task, for values Airflow must not render with Jinja.

A gate's query is SQL: its `${params.X}` must become bind parameters (runtime.sqlparams), so the DAG passes
the gate as written (an `airflow.sdk.literal`) and the task renders it here, from the task's own context.
Airflow is imported only inside these functions: the runtime installs without it.
"""

from __future__ import annotations

from typing import Any

from pipegen.runtime import redact
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.step import run_date_from
from pipegen.runtime.templating import Values


class AirflowVariables:
    """${secret.X} from the Airflow Variable X (and so from any configured secrets backend), masked on read."""

    def lookup(self, name: str) -> str | None:
        """The Variable's value, registered with Airflow's masker and pipegen's; None when there is no such Variable."""
        from airflow.sdk import Variable  # type: ignore[import-not-found,unused-ignore]

        value = Variable.get(name, default=None)
        if value is None:
            return None
        text = str(value)
        mask_everywhere(text)
        return text

    def where(self, name: str) -> str:
        """Where lookup looked, for messages."""
        return f"Airflow Variable '{name}'"


def mask_everywhere(value: str) -> None:
    """Mask a secret value in Airflow's task logs (this process and the supervisor's) and in pipegen's messages."""
    from airflow.sdk.log import mask_secret  # type: ignore[import-not-found,unused-ignore]

    # Without a name: Airflow masks a Variable by itself only when its name sounds secret ("token", ...).
    mask_secret(value)
    redact.register(value)


def task_values(timezone: str) -> Values:
    """What references mean in the running task: its params, run id, and run date in the schedule's timezone."""
    from airflow.sdk import get_current_context  # type: ignore[import-not-found,unused-ignore]

    context: Any = get_current_context()
    dag_run = context["dag_run"]
    # As the DAG's ${run.date} macro: the logical date, or the trigger time for a run without one.
    when = dag_run.logical_date or dag_run.run_after
    return Values(dict(context["params"]), str(context["run_id"]), run_date_from(when.isoformat(), timezone))


def rendered_gate(gate: dict[str, Any], timezone: str) -> dict[str, Any]:
    """The gate as written in the spec, rendered for this task: its query's references as bind parameters."""
    from pipegen.runtime.sqlparams import render_gate
    from pipegen.runtime.templating import secret_store

    with secret_store(AirflowVariables()):
        return render_gate(gate, task_values(timezone))


def variable_secret(name: str) -> str:
    """${secret.NAME} where Airflow renders it (the DAG's macro): the Variable NAME, masked everywhere."""
    value = AirflowVariables().lookup(name)
    if value is None:
        raise RuntimeFailure(f"${{secret.{name}}} needs the Airflow Variable '{name}', which does not exist")
    return value
