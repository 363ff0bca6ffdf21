"""Python names in the flow module: module-level names the flow body calls must not be its parameters' names."""

from __future__ import annotations

import builtins
import keyword

# Imported at module level (prefect) or used by the template's own code.
_IMPORTED = {"flow", "task", "NO_CACHE", "Completed", "State", "json", "time"}
# The flow body's own variables (assigned after the parameters are read into `params`).
FLOW_LOCALS = ("params", "run_key", "run_date", "steps")


def flow_function(pipeline_name: str) -> str:
    """The flow function: the spec name with '-' as '_' (a Python keyword gets a trailing '_')."""
    name = pipeline_name.replace("-", "_")
    return name + "_" if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _IMPORTED else name


class Names:
    """Hands out module-level names, each unique and none equal to a flow parameter, keyword or builtin.

    Inside the flow function a parameter named like a task function would hide it; so would a builtin the
    annotations read (float, int...). A wanted name that is taken gets '_' appended until it is free.
    """

    def __init__(self, params: list[str], flow: str) -> None:
        self.taken: set[str] = {*params, *_IMPORTED, *FLOW_LOCALS, *dir(builtins), flow}

    def claim(self, wanted: str) -> str:
        """A free name as close to wanted as possible, now taken."""
        name = wanted
        while name in self.taken or keyword.iskeyword(name) or keyword.issoftkeyword(name):
            name += "_"
        self.taken.add(name)
        return name
