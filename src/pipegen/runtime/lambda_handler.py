"""The AWS Lambda entry point Step Functions invokes: {"action": NAME, "args": {...}} -> result."""

from __future__ import annotations

from typing import Any

from pipegen.runtime.actions import action


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Run the action the state machine asks for and return its JSON result."""
    return action(str(event["action"]))(**dict(event.get("args") or {}))
