"""How a state machine moves data, in each Amazon States Language query language.

The Step Functions lowering decides which states exist; a Dialect decides how they read and store
values. Data lives in named slots: ("pipegen",) for the run's context, (kind, step) for what a step
left behind. JSONPath keeps slots in the state data (`$.runs.train`); JSONata keeps them in variables
(`$runs_train`). Literal strings stay literal in both: JSONPath evaluates only keys ending in `.$`,
and a JSONata literal that could read as an expression is written as a JSONata string literal.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

# The execution input's keys: {"params": {...}, "scheduled_time": "<ISO time>"}, both optional.
SCHEDULED_TIME = "scheduled_time"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
# What JavaScript's regex `.` does not match: asl-validator's patterns use it.
LINE_TERMINATORS = "\n\r\u2028\u2029"


def plain_string(text: str) -> bool:
    """Whether asl-validator 4 reads text as a plain (not JSONata) string where it checks one.

    Its pattern `^(?!\\{% )(.+)(?! %\\})$` (jsonata.json, not_jsonata) applies to every string of a JSONata
    template and to the strings inside arrays of a JSONPath payload: it refuses an empty string, a line
    break anywhere (`.` stops there) and a leading '{% '. Step Functions takes such strings; pipegen
    writes them where the validator reads no pattern (see JsonPath.request_spec, JobStates._job).
    """
    return bool(text) and not any(c in text for c in LINE_TERMINATORS) and not text.startswith("{% ")


def jsonata_json(value: Any) -> str:
    """value as JSON text that is also one line of JSONata: U+2028/U+2029, which JSON leaves raw, escaped."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


@dataclass(frozen=True)
class Slot:
    """A value the state machine holds: a stored slot (one or two names), optionally a field inside it.

    depth is the nesting of Parallel branches where the slot is read or written (0: the top level);
    JSONata variables cannot be assigned in a branch once an outer scope has them, so each depth has
    its own variable, and a Parallel copies its branches' results one level out.
    """

    path: tuple[str, ...]
    depth: int = 0

    def field(self, *names: str) -> Slot:
        """A value inside this slot."""
        return Slot((*self.path, *names), self.depth)


@dataclass(frozen=True)
class Shared:
    """A step's result that other steps read (a train step's run, a skip-evaluation's verdict), and its default."""

    kind: str
    step: str
    field: str
    default: Any

    def slot(self, depth: int) -> Slot:
        """Where it is held at this depth."""
        return Slot((self.kind, self.step, self.field), depth)


@dataclass(frozen=True)
class Read:
    """A slot's value inside run-time text; as_text writes a number or boolean the way the runtime does."""

    slot: Slot
    as_text: bool = False


@dataclass(frozen=True)
class Text:
    """A string the state machine builds at run time from literal pieces and reads."""

    parts: tuple[str | Read, ...]


@dataclass(frozen=True)
class TextList:
    """A list of strings built at run time (a job's command)."""

    items: tuple[Text, ...]


@dataclass(frozen=True)
class LocalDate:
    """How the run date is found for a schedule outside UTC: a runtime Lambda call (intrinsics know no zones)."""

    timezone: str
    function: str
    retry: tuple[dict[str, Any], ...]
    fail_state: str

    def request(self, scheduled_time: Any) -> dict[str, Any]:
        """The lambda:invoke request, scheduled_time being this query language's read of the time."""
        args = {"scheduled_time": scheduled_time, "timezone": self.timezone}
        return {"FunctionName": self.function, "Payload": {"action": "run_date", "args": args}}


Condition = Any


class Dialect(ABC):
    """The data plumbing of one query language."""

    name: str

    # ---- values ------------------------------------------------------------------------------
    def template(self, value: Any) -> Any:
        """A Parameters/Arguments template: literals stay literal, Slots become reads."""
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                out.update(self._entry(key, item))
            return out
        if isinstance(value, list):
            return [self.template(v) for v in value]
        if isinstance(value, Slot):
            raise TypeError("a Slot can only be the value of an object key")
        return self.literal(value)

    def _entry(self, key: str, item: Any) -> dict[str, Any]:
        if isinstance(item, Slot):
            return self.read_entry(key, item)
        if isinstance(item, TextList):
            return self.text_list_entry(key, item)
        return {key: self.template(item)}

    @abstractmethod
    def literal(self, value: Any) -> Any:
        """A scalar that must reach the service exactly as written."""

    @abstractmethod
    def read_entry(self, key: str, slot: Slot) -> dict[str, Any]:
        """An object entry whose value is read from a slot."""

    @abstractmethod
    def holds_literal(self, text: str) -> bool:
        """Whether literal text can sit inside a run-time expression of this language, unescaped."""

    @abstractmethod
    def text_list_entry(self, key: str, value: TextList) -> dict[str, Any]:
        """An object entry whose value is a list of strings built at run time."""

    @abstractmethod
    def in_list(self, text: str) -> bool:
        """Whether literal text can be an item of a literal list the definition writes (a job's command)."""

    @abstractmethod
    def request_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The runtime request's spec as `step` action arguments: {"spec": ...} or {"spec_json": "<JSON text>"}."""

    # ---- states ------------------------------------------------------------------------------
    @abstractmethod
    def context_states(
        self, defaults: dict[str, Any], shared: list[Shared], next_state: str, local_date: LocalDate | None
    ) -> dict[str, dict[str, Any]]:
        """The first states: params (input over defaults), run id and run date into ("pipegen",), shared defaults.

        The run date is the scheduled time's date (the execution's start for a manual run): cut from
        the UTC time, or, with local_date, the date in the schedule's timezone from the runtime.
        """

    def _local_date_state(self, local_date: LocalDate, io: dict[str, Any], next_state: str) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Comment": f"The run date (${{run.date}}): the scheduled time's date in {local_date.timezone}.",
            "Resource": LAMBDA_INVOKE,
            **io,
            "Retry": list(local_date.retry),
            # No notification yet: it would need the context this state makes.
            "Catch": [self.catch(local_date.fail_state)],
            "Next": next_state,
        }

    @abstractmethod
    def task_io(
        self, arguments: dict[str, Any], select: dict[str, tuple[str, ...]], store: Slot | None
    ) -> dict[str, Any]:
        """A Task's request, and which fields of its result it keeps in a slot (none: keep nothing)."""

    @abstractmethod
    def set_value(self, store: Slot, value: dict[str, Any], comment: str, next_state: str) -> dict[str, Any]:
        """A Pass state that puts a constant into a slot."""

    @abstractmethod
    def increment(self, store: Slot, key: str, next_state: str) -> dict[str, Any]:
        """A Pass state that adds one to a counter {key: n} in a slot."""

    @abstractmethod
    def failure(self, error: str, cause: Slot, next_state: str, as_json: bool = False) -> dict[str, Any]:
        """A Pass state that records a failure {Error, Cause} like a Catch does."""

    @abstractmethod
    def catch(self, next_state: str, keep_failure: bool = False) -> dict[str, Any]:
        """A catcher for every error, recording it as the failure (unless one is recorded already)."""

    @abstractmethod
    def fail_state(self) -> dict[str, Any]:
        """The Fail state, carrying the recorded failure's cause."""

    @abstractmethod
    def fail_with(self, error: str, cause: Slot, as_json: bool = False) -> dict[str, Any]:
        """A Fail state with this error and the cause read from a slot (inside a Parallel branch)."""

    @abstractmethod
    def branch_start(self, produced: list[Shared], depth: int, next_state: str) -> dict[str, Any] | None:
        """A branch's first state when its results need defaults in its own scope (None: none needed)."""

    @abstractmethod
    def branch_end(self, produced: list[Shared], depth: int) -> dict[str, Any]:
        """A branch's last state: its output is only the shared results it produced."""

    @abstractmethod
    def parallel(
        self, branches: list[dict[str, Any]], produced: list[list[Shared]], depth: int, comment: str, kinds: list[str]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A Parallel state that keeps its branches' shared results at depth, and the Pass that joins them, if any.

        kinds: every kind of shared result the state data holds, which the join keeps.
        """

    @abstractmethod
    def is_true(self, slot: Slot) -> Condition:
        """A Choice condition: the boolean at slot is true."""

    @abstractmethod
    def at_least(self, slot: Slot, number: int) -> Condition:
        """A Choice condition: the number at slot is at least number."""

    @abstractmethod
    def all_of(self, conditions: list[Condition]) -> Condition:
        """A Choice condition: every condition holds."""

    @abstractmethod
    def choice(self, rules: list[tuple[Condition, str]], default: str, comment: str) -> dict[str, Any]:
        """A Choice state: the first rule that holds names the next state."""


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


def dialect_for(query_language: str) -> Dialect:
    """The dialect for a QueryLanguage value."""
    return Jsonata() if query_language == "JSONata" else JsonPath()
