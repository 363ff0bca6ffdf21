"""How a state machine moves data, in each Amazon States Language query language.

The Step Functions lowering decides which states exist; a Dialect decides how they read and store
values. Data lives in named slots: ("pipegen",) for the run's context, (kind, step) for what a step
left behind. JSONPath keeps slots in the state data (`$.runs.train`); JSONata keeps them in variables
(`$runs_train`). Literal strings stay literal in both: JSONPath evaluates only keys ending in `.$`,
and a JSONata literal that could read as an expression is written as a JSONata string literal.
"""

from __future__ import annotations

from pipegen.targets.asl.base import (
    LAMBDA_INVOKE,
    LINE_TERMINATORS,
    SCHEDULED_TIME,
    Condition,
    Dialect,
    LocalDate,
    Read,
    Shared,
    Slot,
    Text,
    TextList,
    jsonata_json,
    plain_string,
)
from pipegen.targets.asl.jsonata import Jsonata
from pipegen.targets.asl.jsonpath import JsonPath

__all__ = [
    "LAMBDA_INVOKE",
    "LINE_TERMINATORS",
    "SCHEDULED_TIME",
    "Condition",
    "Dialect",
    "JsonPath",
    "Jsonata",
    "LocalDate",
    "Read",
    "Shared",
    "Slot",
    "Text",
    "TextList",
    "dialect_for",
    "jsonata_json",
    "plain_string",
]


def dialect_for(query_language: str) -> Dialect:
    """The dialect for a QueryLanguage value."""
    return Jsonata() if query_language == "JSONata" else JsonPath()
