"""What the DAG template lays out: operator calls and module parts, as pre-rendered Python source."""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field

# Names the generated module defines or imports; a step with one of these names gets a '_' suffix.
_TAKEN = {
    "DAG",
    "Param",
    "literal",
    "task",
    "os",
    "timedelta",
    "pendulum",
    "k8s",
    "Secret",
    "KubernetesPodOperator",
    "BatchOperator",
    "SageMakerTrainingOperator",
    "SparkSubmitOperator",
    "EmrAddStepsOperator",
    "EmrServerlessStartJobOperator",
    "EmrContainerOperator",
    "GlueJobOperator",
    "SparkKubernetesOperator",
    "sys",
    "KubernetesJobOperator",
    "KubernetesCreateResourceOperator",
    "KubernetesDeleteResourceOperator",
    "PIPELINE",
    "SPEC_SHA256",
    "EXPERIMENT",
    "TRACKING_URI",
    "TIMEZONE",
    "FAILURE_WEBHOOKS",
    "SUCCESS_WEBHOOKS",
    "dag",
    "annotations",
}


# The longest `var = call.override(...)(` the DAG file keeps on one line.
HEAD_WIDTH = 100


@dataclass
class Task:
    """One operator instantiation in the DAG body: `var = call(kwargs...)`."""

    var: str
    call: str
    kwargs: list[tuple[str, str]]
    comment: str = ""
    # The setup task this one tears down (Airflow's as_teardown): it runs whatever the work's outcome.
    teardown_of: str = ""
    # A @task's operator arguments (task_id, retries, callbacks), given to `call.override()`; None for an operator
    # class, whose operator arguments are among kwargs.
    options: list[tuple[str, str]] | None = None

    @property
    def head(self) -> str:
        """What the DAG calls on one line: the operator class, or the @task function with its operator arguments."""
        return self.call if self.options is None else f"{self.call}.override({kw(self.options)})"

    @property
    def one_line(self) -> bool:
        """Whether `var = head(` reads well on one line; else the template lays out one operator argument a line."""
        return self.options is None or len(self.var) + len(self.head) <= HEAD_WIDTH

    def add_operator_args(self, pairs: list[tuple[str, str]]) -> None:
        """Operator arguments added after the others: to .override() for a @task, else among its kwargs."""
        (self.kwargs if self.options is None else self.options).extend(pairs)


@dataclass(frozen=True)
class Callback:
    """A DAG-level callback posting the run's end to one notify list: `on_<word>_callback=_notify_<word>`."""

    word: str  # "failure" | "success": names the spec key, the callback, its DAG argument and its constant
    event: str  # what the message says: "failed" | "succeeded"
    run: str  # how the docstring names the run

    @property
    def function(self) -> str:
        """The module-level function Airflow calls."""
        return f"_notify_{self.word}"

    @property
    def webhooks(self) -> str:
        """The module constant holding the webhook URLs as Airflow templates."""
        return f"{self.word.upper()}_WEBHOOKS"


@dataclass
class View:
    """Everything the DAG template lays out, as pre-rendered Python source."""

    header: list[str]
    docstring: str
    imports: list[str]
    constants: list[tuple[str, str]]
    helpers: set[str]
    default_args: list[tuple[str, str]]
    dag_kwargs: list[tuple[str, str]]
    tasks: list[Task] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    # `AIRFLOW_CONN_<ID>=value` of each connection the DAG's SparkSubmitOperators read their master from, as
    # comment text (shell-quoted, escaped by render.comment_text).
    connections: list[str] = field(default_factory=list)


def var_name(step: str) -> str:
    """A Python variable for a step: its name, with '_' added where that would shadow something."""
    if keyword.iskeyword(step) or keyword.issoftkeyword(step) or step in _TAKEN:
        return step + "_"
    return step


def timedelta_source(seconds: int) -> str:
    """Python source for a timedelta of whole seconds."""
    return f"timedelta(seconds={seconds})"


def kw(pairs: list[tuple[str, str]]) -> str:
    """Keyword arguments as Python source."""
    return ", ".join(f"{k}={v}" for k, v in pairs)


def sorted_imports(lines: set[str]) -> list[str]:
    """Imports grouped like isort: stdlib, then third party; `from x import a` lines merged."""
    merged: dict[str, set[str]] = {}
    plain_imports: set[str] = set()
    for line in lines:
        if line.startswith("from "):
            module, names = line[5:].split(" import ")
            merged.setdefault(module, set()).update(n.strip() for n in names.split(","))
        else:
            plain_imports.add(line)
    stdlib = sorted(i for i in plain_imports if i in ("import os", "import sys")) + sorted(
        f"from {m} import {', '.join(sorted(n))}" for m, n in merged.items() if m == "datetime"
    )
    third = sorted(i for i in plain_imports if i not in ("import os", "import sys")) + sorted(
        f"from {m} import {', '.join(sorted(n, key=lambda x: (x.lower(), x)))}"
        for m, n in merged.items()
        if m != "datetime"
    )
    return [*stdlib, "", *third]
