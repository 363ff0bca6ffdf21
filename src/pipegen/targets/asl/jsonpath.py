"""QueryLanguage JSONPath: slots are paths in the state data; only keys ending in `.$` are evaluated."""

from __future__ import annotations

import json
from typing import Any

from pipegen.targets.asl.base import (
    SCHEDULED_TIME,
    Condition,
    Dialect,
    LocalDate,
    Read,
    Shared,
    Slot,
    Text,
    TextList,
    plain_string,
)


class JsonPath(Dialect):
    """QueryLanguage JSONPath: slots are paths in the state data."""

    name = "JSONPath"

    def path(self, slot: Slot) -> str:
        return "$." + ".".join(slot.path)

    def literal(self, value: Any) -> Any:
        return value

    def read_entry(self, key: str, slot: Slot) -> dict[str, Any]:
        return {f"{key}.$": self.path(slot)}

    def holds_literal(self, text: str) -> bool:
        # In an intrinsic's string literal the service wants a backslash before each of ' { } and the
        # backslash itself, which local interpreters do not undo the same way: text holding them is
        # rendered by the runtime Lambda instead, as plain JSON.
        return text.isprintable() and not any(c in text for c in "'{}\\")

    def text_list_entry(self, key: str, value: TextList) -> dict[str, Any]:
        return {f"{key}.$": "States.Array(" + ", ".join(self._text(t) for t in value.items) + ")"}

    def in_list(self, text: str) -> bool:
        # A string inside an array of a JSONPath payload must be one non-empty line for asl-validator.
        return plain_string(text)

    def request_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        # One JSON string, which the Lambda handler decodes: a string value of an object is never
        # pattern-checked, so the spec's lists may hold any text (an empty or multi-line argument).
        return {"spec_json": json.dumps(spec, ensure_ascii=False, separators=(",", ":"))}

    def _text(self, text: Text) -> str:
        for piece in text.parts:
            assert not isinstance(piece, str) or self.holds_literal(piece), piece
        if all(isinstance(p, str) for p in text.parts):
            return "'" + "".join(p for p in text.parts if isinstance(p, str)) + "'"
        if len(text.parts) == 1 and isinstance(text.parts[0], Read) and not text.parts[0].as_text:
            return self.path(text.parts[0].slot)
        pattern = "".join(p if isinstance(p, str) else "{}" for p in text.parts)
        reads = [self.path(p.slot) for p in text.parts if isinstance(p, Read)]
        return f"States.Format('{pattern}', {', '.join(reads)})"

    def context_states(
        self, defaults: dict[str, Any], shared: list[Shared], next_state: str, local_date: LocalDate | None
    ) -> dict[str, dict[str, Any]]:
        # Intrinsics cannot default a missing input field, so the defaults are merged under the input:
        # first the whole input (its params replace the defaults' params), then the params themselves.
        # $$.State.EnteredTime of the first state is the execution's start, as an ISO string.
        scheduled = f"$.merged.{SCHEDULED_TIME}"
        context: dict[str, Any] = {
            "pipegen": {
                "params.$": "States.JsonMerge($.defaults.params, $.merged.params, false)",
                "run_id.$": "$$.Execution.Name",
                "run_date.$": "$.local.run_date"
                if local_date
                else f"States.ArrayGetItem(States.StringSplit({scheduled}, 'T'), 0)",
            }
        }
        for item in shared:
            context.setdefault(item.kind, {})[item.step] = {item.field: item.default}
        dated: dict[str, dict[str, Any]] = {}
        if local_date is not None:
            request = self.template(local_date.request(Slot(("merged", SCHEDULED_TIME))))
            io = {
                "Parameters": request,
                "ResultSelector": {"run_date.$": "$.Payload.run_date"},
                "ResultPath": "$.local",
            }
            dated["pipegen.run_date"] = self._local_date_state(local_date, io, "pipegen.context")
        return {
            "pipegen.input": {
                "Type": "Pass",
                "Comment": 'Execution input: {"params": {...}, "scheduled_time": "<ISO time>"}, both optional.',
                "Parameters": {
                    "defaults": {"params": defaults, f"{SCHEDULED_TIME}.$": "$$.State.EnteredTime"},
                    "input.$": "$",
                },
                "Next": "pipegen.merge",
            },
            "pipegen.merge": {
                "Type": "Pass",
                "Parameters": {"defaults.$": "$.defaults", "merged.$": "States.JsonMerge($.defaults, $.input, false)"},
                "Next": next(iter(dated), "pipegen.context"),
            },
            **dated,
            "pipegen.context": {
                "Type": "Pass",
                "Comment": "The run's params, id (${run.id}) and logical date (${run.date}).",
                "Parameters": context,
                "Next": next_state,
            },
        }

    def task_io(
        self, arguments: dict[str, Any], select: dict[str, tuple[str, ...]], store: Slot | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"Parameters": self.template(arguments)}
        if select:
            out["ResultSelector"] = {f"{k}.$": "$." + ".".join(p) for k, p in select.items()}
        out["ResultPath"] = self.path(store) if store is not None else None
        return out

    def set_value(self, store: Slot, value: dict[str, Any], comment: str, next_state: str) -> dict[str, Any]:
        return {"Type": "Pass", "Comment": comment, "Result": value, "ResultPath": self.path(store), "Next": next_state}

    def increment(self, store: Slot, key: str, next_state: str) -> dict[str, Any]:
        return {
            "Type": "Pass",
            "Parameters": {f"{key}.$": f"States.MathAdd({self.path(store.field(key))}, 1)"},
            "ResultPath": self.path(store),
            "Next": next_state,
        }

    def failure(self, error: str, cause: Slot, next_state: str, as_json: bool = False) -> dict[str, Any]:
        read = f"States.JsonToString({self.path(cause)})" if as_json else self.path(cause)
        return {
            "Type": "Pass",
            "Parameters": {"Error": error, "Cause.$": read},
            "ResultPath": "$.failure",
            "Next": next_state,
        }

    def catch(self, next_state: str, keep_failure: bool = False) -> dict[str, Any]:
        where = "$.notification_failure" if keep_failure else "$.failure"
        return {"ErrorEquals": ["States.ALL"], "ResultPath": where, "Next": next_state}

    def catch_into(self, store: Slot, next_state: str) -> dict[str, Any]:
        return {"ErrorEquals": ["States.ALL"], "ResultPath": self.path(store), "Next": next_state}

    def fail_from(self, error: str, store: Slot) -> dict[str, Any]:
        kept = f"{self.path(store.field('Error'))}, {self.path(store.field('Cause'))}"
        return {"Type": "Fail", "Error": error, "CausePath": f"States.Format('{{}}: {{}}', {kept})"}

    def fail_state(self) -> dict[str, Any]:
        return {"Type": "Fail", "Error": "pipegen.PipelineFailed", "CausePath": "$.failure.Cause"}

    def fail_with(self, error: str, cause: Slot, as_json: bool = False) -> dict[str, Any]:
        read = f"States.JsonToString({self.path(cause)})" if as_json else self.path(cause)
        return {"Type": "Fail", "Error": error, "CausePath": read}

    def branch_start(self, produced: list[Shared], depth: int, next_state: str) -> dict[str, Any] | None:
        return None  # a branch's input is a copy of the state data, defaults included

    def _export(self, produced: list[Shared], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in produced:
            out.setdefault(item.kind, {})[item.step] = {
                f"{item.field}.$": f"{prefix}.{item.kind}.{item.step}.{item.field}"
            }
        return out

    def branch_end(self, produced: list[Shared], depth: int) -> dict[str, Any]:
        # Only what later steps read leaves the branch: the Parallel's result stays small.
        keep = {"Parameters": self._export(produced, "$")} if produced else {"Result": {}}
        return {"Type": "Pass", **keep, "End": True}

    def parallel(
        self, branches: list[dict[str, Any]], produced: list[list[Shared]], depth: int, comment: str, kinds: list[str]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        state: dict[str, Any] = {"Type": "Parallel", "Comment": comment, "Branches": branches}
        picked: dict[str, Any] = {}
        for i, items in enumerate(produced):
            for kind, entries in self._export(items, f"$[{i}]").items():
                picked.setdefault(kind, {}).update(entries)
        if not picked:
            return state | {"ResultPath": None}, None
        state |= {"ResultSelector": picked, "ResultPath": "$.joined"}
        # States.JsonMerge is shallow: each branch's entries replace the defaults of their own steps.
        merged = {
            f"{kind}.$": f"States.JsonMerge($.{kind}, $.joined.{kind}, false)" if kind in picked else f"$.{kind}"
            for kind in kinds
        }
        join = {"Type": "Pass", "Parameters": {"pipegen.$": "$.pipegen", **merged}}
        return state, join

    def is_true(self, slot: Slot) -> Condition:
        return {"Variable": self.path(slot), "BooleanEquals": True}

    def at_least(self, slot: Slot, number: int) -> Condition:
        return {"Variable": self.path(slot), "NumericGreaterThanEquals": number}

    def all_of(self, conditions: list[Condition]) -> Condition:
        return conditions[0] if len(conditions) == 1 else {"And": conditions}

    def choice(self, rules: list[tuple[Condition, str]], default: str, comment: str) -> dict[str, Any]:
        return {
            "Type": "Choice",
            "Comment": comment,
            "Choices": [{**condition, "Next": target} for condition, target in rules],
            "Default": default,
        }
