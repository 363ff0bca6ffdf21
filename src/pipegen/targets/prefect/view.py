"""What the flow module template lays out: tasks, hooks and the flow body, all text pre-rendered."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TaskDef:
    """One @task function: its name, decorator arguments, inputs, docstring and body (pre-rendered)."""

    name: str
    decorator: list[tuple[str, str]]
    inputs: list[tuple[str, str]]
    doc: str
    body: list[str]


@dataclass
class View:
    """Everything the module template lays out."""

    header: list[str]
    # The pipegen-ml extras the worker installs, and what the ones a spec adds need (a comment each).
    extras: list[str]
    install_notes: list[str]
    docstring: str
    constants: list[tuple[str, str]]
    # Module-level helpers the flow body calls, by role: their names avoid the flow's parameter names.
    names: dict[str, str]
    helpers: set[str]
    tasks: list[TaskDef]
    flow_name: str
    flow_decorator: list[tuple[str, str]]
    flow_params: list[str]
    flow_doc: str
    flow_body: list[str]
