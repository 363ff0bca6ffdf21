"""Draw the step graph as Mermaid, Graphviz dot or JSON."""

from __future__ import annotations

import json

from pipegen.graph import StepGraph
from pipegen.spec import Spec, Step

FORMATS = ("mermaid", "dot", "json")

# Mermaid reads '#name;' as an entity and drops HTML-like text, so these are written as entities.
_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;", "|": "#124;"}
_MERMAID_SHAPES = {
    "gate": ("{{", "}}"),
    "task": ("[", "]"),
    "train": ("[[", "]]"),
    "evaluate": ("{", "}"),
    "promote": ("([", "])"),
}
_MERMAID_STYLES = {
    "gate": "fill:#e8f1fb,stroke:#3b73b9",
    "task": "fill:#f4f4f4,stroke:#777777",
    "train": "fill:#fdf0e1,stroke:#c27c0e",
    "evaluate": "fill:#f3e9fb,stroke:#8045b5",
    "promote": "fill:#e6f6ea,stroke:#2e8b47",
}


def detail(step: Step) -> str:
    """A short description of what a step does, for labels."""
    if step.gate is not None:
        return f"gate: {step.gate.check}{' (waits)' if step.gate.wait else ''}"
    if step.task is not None or step.train is not None:
        body = step.task or step.train
        assert body is not None
        return f"{step.kind} on {body.backend or 'local'}"
    if step.evaluate is not None:
        return f"evaluate {step.evaluate.run_of}"
    assert step.promote is not None
    return f"promote {step.promote.model}@{step.promote.alias}"


def mermaid_text(text: str) -> str:
    """Text for inside a quoted Mermaid label, with Mermaid's special characters as entities."""
    return "".join(_MERMAID_ESCAPES.get(c, c) for c in text)


def to_mermaid(spec: Spec, graph: StepGraph) -> str:
    """A Mermaid flowchart, as GitHub renders in ```mermaid blocks."""
    steps = {s.name: s for s in spec.steps}
    order = graph.order()
    lines = ["flowchart TD"]
    for name in order:
        step = steps[name]
        left, right = _MERMAID_SHAPES[step.kind]
        # Node ids are prefixed: bare words such as 'end' or 'graph' are Mermaid keywords.
        label = f"{mermaid_text(name)}<br/>{mermaid_text(detail(step))}"
        lines.append(f'    s_{name}{left}"{label}"{right}')
    for u, v in sorted(graph.edges(), key=lambda e: (order.index(e[1]), order.index(e[0]))):
        lines.append(f"    s_{u} --> s_{v}")
    for kind, style in _MERMAID_STYLES.items():
        members = [f"s_{n}" for n in order if steps[n].kind == kind]
        if members:
            lines.append(f"    classDef {kind} {style}")
            lines.append(f"    class {','.join(members)} {kind}")
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(spec: Spec, graph: StepGraph) -> str:
    """A Graphviz digraph."""
    steps = {s.name: s for s in spec.steps}
    order = graph.order()
    lines = [f"digraph {_dot_string(spec.name)} {{", "    rankdir=TB;", '    node [shape=box, fontname="Helvetica"];']
    for name in order:
        label = _dot_string(f"{name}\n{detail(steps[name])}")
        lines.append(f"    {_dot_string(name)} [label={label}];")
    for u, v in sorted(graph.edges(), key=lambda e: (order.index(e[1]), order.index(e[0]))):
        lines.append(f"    {_dot_string(u)} -> {_dot_string(v)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(spec: Spec, graph: StepGraph) -> str:
    """The graph as JSON: steps in order, with kind and dependencies."""
    steps = {s.name: s for s in spec.steps}
    nodes = [
        {"name": name, "kind": steps[name].kind, "detail": detail(steps[name]), "after": graph.upstream(name)}
        for name in graph.order()
    ]
    return json.dumps({"pipeline": spec.name, "steps": nodes}, indent=2, ensure_ascii=False) + "\n"


def draw(spec: Spec, graph: StepGraph, fmt: str) -> str:
    """Render the graph in one of FORMATS."""
    return {"mermaid": to_mermaid, "dot": to_dot, "json": to_json}[fmt](spec, graph)
