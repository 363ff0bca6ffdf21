"""The front end in one call: load, validate, build the graph, run the checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipegen.checks import CheckContext, run_checks
from pipegen.diagnostics import Diagnostic, has_errors, sort_diagnostics
from pipegen.graph import StepGraph, build_graph
from pipegen.loader import Loaded, Source, SourceMap, load_file, load_text
from pipegen.parse import parse_spec
from pipegen.spec import Spec


@dataclass
class Checked:
    """A checked spec: the model and graph when loading got that far, and every diagnostic."""

    source: Source
    smap: SourceMap
    spec: Spec | None = None
    graph: StepGraph | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there is a spec and no error."""
        return self.spec is not None and not has_errors(self.diagnostics)


def check_source(source: Source) -> Checked:
    """Run the front end over spec text already read."""
    return _check(load_text(source))


def check_file(path: str) -> Checked:
    """Run the front end over a spec file."""
    return _check(load_file(path))


def _check(loaded: Loaded) -> Checked:
    out = Checked(loaded.source, loaded.smap, diagnostics=list(loaded.diagnostics))
    if loaded.data is None:
        out.diagnostics = sort_diagnostics(out.diagnostics)
        return out
    spec, diags = parse_spec(loaded.data, loaded.smap)
    out.diagnostics.extend(diags)
    if spec is not None:
        out.spec = spec
        out.graph = build_graph(spec)
        out.diagnostics.extend(run_checks(CheckContext(spec, loaded.data, loaded.smap, out.graph)))
    out.diagnostics = sort_diagnostics(out.diagnostics)
    return out
