"""QueryLanguage JSONata: slots are variables set with Assign; literals that could read as expressions are quoted."""

from __future__ import annotations

from typing import Any

from pipegen.targets.asl.base import (
    SCHEDULED_TIME,
    Condition,
    Dialect,
    LocalDate,
    Shared,
    Slot,
    Text,
    TextList,
    jsonata_json,
    plain_string,
)


class Jsonata(Dialect):
    """QueryLanguage JSONata: slots are variables ($runs_train), set with Assign."""

    name = "JSONata"

    def var(self, slot: Slot) -> str:
        stored, rest = slot.path[:2], slot.path[2:]
        suffix = f"_D{slot.depth}" if slot.depth else ""  # step names are lower case: no clash
        if stored[0] in ("pipegen", "failure"):
            stored, rest, suffix = slot.path[:1], slot.path[1:], ""
        return "$" + "_".join(stored) + suffix + "".join(f".{name}" for name in rest)

    def stored(self, slot: Slot) -> str:
        return self.var(slot)[1:]

    def literal(self, value: Any) -> Any:
        # The service evaluates a string that starts with '{%' and ends with '%}'; any string holding
        # '{%' is written as a JSONata string literal instead (JSON string syntax is valid JSONata), and
        # so is one asl-validator would not read as plain text (empty, or with a line break).
        if isinstance(value, str) and ("{%" in value or not plain_string(value)):
            return "{% " + jsonata_json(value) + " %}"
        return value

    def read_entry(self, key: str, slot: Slot) -> dict[str, Any]:
        return {key: "{% " + self.var(slot) + " %}"}

    def holds_literal(self, text: str) -> bool:
        # Literal pieces are written as JSON strings, which are JSONata string literals.
        return True

    def text_list_entry(self, key: str, value: TextList) -> dict[str, Any]:
        return {key: "{% [" + ", ".join(self._text(t) for t in value.items) + "] %}"}

    def in_list(self, text: str) -> bool:
        return True  # literal() writes what the validator cannot read as a JSONata string literal

    def request_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {"spec": spec}  # literal() covers every string of it

    def _text(self, text: Text) -> str:
        pieces = [
            jsonata_json(p) if isinstance(p, str) else f"$string({self.var(p.slot)})" if p.as_text else self.var(p.slot)
            for p in text.parts
        ]
        return " & ".join(pieces) if pieces else '""'

    def context_states(
        self, defaults: dict[str, Any], shared: list[Shared], next_state: str, local_date: LocalDate | None
    ) -> dict[str, dict[str, Any]]:
        given = "$states.input"
        params = f"{{% $merge([{jsonata_json(defaults)}, $exists({given}.params) ? {given}.params : {{}}]) %}}"
        when = f"$exists({given}.{SCHEDULED_TIME}) ? {given}.{SCHEDULED_TIME} : $states.context.Execution.StartTime"
        assign: dict[str, Any] = {
            "pipegen": {
                "params": params,
                "run_id": "{% $states.context.Execution.Name %}",
                "run_date": "{% $local_run_date %}" if local_date else f"{{% $substringBefore({when}, 'T') %}}",
            }
        }
        for item in shared:
            assign[f"{item.kind}_{item.step}"] = {item.field: item.default}
        dated: dict[str, dict[str, Any]] = {}
        if local_date is not None:
            request = self.template(local_date.request(""))
            request["Payload"]["args"]["scheduled_time"] = "{% " + when + " %}"
            io = {
                "Arguments": request,
                "Assign": {"local_run_date": "{% $states.result.Payload.run_date %}"},
                "Output": "{% $states.input %}",
            }
            dated["pipegen.run_date"] = self._local_date_state(local_date, io, "pipegen.context")
        return {
            **dated,
            "pipegen.context": {
                "Type": "Pass",
                "Comment": 'Execution input: {"params": {...}, "scheduled_time": "<ISO time>"}, both optional.',
                "Assign": assign,
                "Next": next_state,
            },
        }

    def task_io(
        self, arguments: dict[str, Any], select: dict[str, tuple[str, ...]], store: Slot | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"Arguments": self.template(arguments)}
        if store is not None:
            picked = {k: "{% $states.result." + ".".join(p) + " %}" for k, p in select.items()}
            out["Assign"] = {self.stored(store): picked}
        # Each state's output is its input: results live in variables, so payloads stay small.
        out["Output"] = "{% $states.input %}"
        return out

    def set_value(self, store: Slot, value: dict[str, Any], comment: str, next_state: str) -> dict[str, Any]:
        return {"Type": "Pass", "Comment": comment, "Assign": {self.stored(store): value}, "Next": next_state}

    def increment(self, store: Slot, key: str, next_state: str) -> dict[str, Any]:
        return {
            "Type": "Pass",
            "Assign": {self.stored(store): {key: "{% " + self.var(store.field(key)) + " + 1 %}"}},
            "Next": next_state,
        }

    def failure(self, error: str, cause: Slot, next_state: str, as_json: bool = False) -> dict[str, Any]:
        read = f"$string({self.var(cause)})" if as_json else self.var(cause)
        return {
            "Type": "Pass",
            "Assign": {"failure": {"Error": error, "Cause": "{% " + read + " %}"}},
            "Next": next_state,
        }

    def catch(self, next_state: str, keep_failure: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"ErrorEquals": ["States.ALL"]}
        if not keep_failure:
            out["Assign"] = {"failure": "{% $states.errorOutput %}"}
        return out | {"Next": next_state}

    def catch_into(self, store: Slot, next_state: str) -> dict[str, Any]:
        # Its own variable at the branch's depth: a branch cannot assign `failure`, which the top level has.
        return {
            "ErrorEquals": ["States.ALL"],
            "Assign": {self.stored(store): "{% $states.errorOutput %}"},
            "Next": next_state,
        }

    def fail_from(self, error: str, store: Slot) -> dict[str, Any]:
        kept = self.var(store)
        return {"Type": "Fail", "Error": error, "Cause": "{% " + kept + ".Error & ': ' & " + kept + ".Cause %}"}

    def fail_state(self) -> dict[str, Any]:
        return {"Type": "Fail", "Error": "pipegen.PipelineFailed", "Cause": "{% $failure.Cause %}"}

    def fail_with(self, error: str, cause: Slot, as_json: bool = False) -> dict[str, Any]:
        read = f"$string({self.var(cause)})" if as_json else self.var(cause)
        return {"Type": "Fail", "Error": error, "Cause": "{% " + read + " %}"}

    def branch_start(self, produced: list[Shared], depth: int, next_state: str) -> dict[str, Any] | None:
        if not produced:
            return None
        # A skipped step leaves its variable unassigned, and reading an unassigned variable fails.
        assign = {self.stored(Slot(item.slot(depth).path[:2], depth)): {item.field: item.default} for item in produced}
        return {"Type": "Pass", "Assign": assign, "Next": next_state}

    def branch_end(self, produced: list[Shared], depth: int) -> dict[str, Any]:
        if not produced:
            return {"Type": "Pass", "Output": {}, "End": True}
        fields = ", ".join(
            f'"{item.kind}_{item.step}": {{"{item.field}": {self.var(item.slot(depth))}}}' for item in produced
        )
        return {"Type": "Pass", "Output": "{% {" + fields + "} %}", "End": True}

    def parallel(
        self, branches: list[dict[str, Any]], produced: list[list[Shared]], depth: int, comment: str, kinds: list[str]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        state: dict[str, Any] = {"Type": "Parallel", "Comment": comment, "Branches": branches}
        assign = {
            self.stored(Slot((item.kind, item.step), depth)): f"{{% $states.result[{i}].{item.kind}_{item.step} %}}"
            for i, items in enumerate(produced)
            for item in items
        }
        if assign:
            state["Assign"] = assign
        return state | {"Output": "{% $states.input %}"}, None

    def is_true(self, slot: Slot) -> Condition:
        return f"{self.var(slot)} = true"

    def at_least(self, slot: Slot, number: int) -> Condition:
        return f"{self.var(slot)} >= {number}"

    def all_of(self, conditions: list[Condition]) -> Condition:
        return " and ".join(f"({c})" if len(conditions) > 1 else c for c in conditions)

    def choice(self, rules: list[tuple[Condition, str]], default: str, comment: str) -> dict[str, Any]:
        return {
            "Type": "Choice",
            "Comment": comment,
            "Choices": [{"Condition": "{% " + condition + " %}", "Next": target} for condition, target in rules],
            "Default": default,
        }
