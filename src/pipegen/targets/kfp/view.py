"""What the module template lays out: component definitions and pipeline calls, all text pre-rendered."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Component:
    """A component function definition: name, signature inputs, docstring and body (pre-rendered)."""

    name: str
    kind: str  # "lightweight" | "container"
    inputs: list[tuple[str, str]]
    returns: str
    doc: str
    body: list[str]


@dataclass
class Call:
    """A task in the pipeline body, with its settings, nested under its dsl.If conditions."""

    var: str
    component: str
    kwargs: list[tuple[str, str]]
    settings: list[str]
    step: str = ""
    depth: int = 0
    condition_opens: list[str] = field(default_factory=list)


@dataclass
class View:
    """Everything the module template lays out."""

    header: list[str]
    docstring: str
    uses_kubernetes: bool
    constants: list[tuple[str, str]]
    components: list[Component]
    pipeline_kwargs: list[tuple[str, str]]
    params: list[str]
    prologue: list[str]
    calls: list[Call]
    # notify.on_failure / on_success: the exit task, and the `with dsl.ExitHandler` line the body runs under.
    exit_task: Call | None = None
    exit_handler: str = ""

    @property
    def nest(self) -> int:
        """How many blocks the pipeline body opens before its first task (the exit handler's)."""
        return 1 if self.exit_task is not None else 0
