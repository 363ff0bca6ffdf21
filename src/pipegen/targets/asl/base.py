"""What both query languages share: slots, run-time text, and the Dialect interface the lowering calls."""

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
    def catch_into(self, store: Slot, next_state: str) -> dict[str, Any]:
        """A catcher for every error that keeps it ({Error, Cause}) in a slot, for a Fail state in a branch."""

    @abstractmethod
    def fail_from(self, error: str, store: Slot) -> dict[str, Any]:
        """A Fail state with this error, its Cause "<Error>: <Cause>" of what catch_into kept.

        A Fail state cannot pass the kept Error on as its own: `States.TaskFailed`, `States.Timeout` (a `.sync`
        job's errors) are reserved names, which the service refuses in a Fail state (States.Runtime instead).
        """

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
