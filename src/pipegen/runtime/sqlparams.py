"""Expressions inside gate SQL become bound parameters, never SQL text.

`SELECT ok FROM flags WHERE dt = '${params.dt}'` run with dt = `x' UNION SELECT password FROM users --`
must compare dt with that string, not run the UNION. The query template is scanned as SQL: a reference
outside quotes becomes a bind parameter holding its value; a quoted string literal that holds references
becomes one bind parameter holding the literal's text with the values put in (so `'dt=${run.date}/'`
keeps meaning what it says). A reference inside a quoted identifier or a comment is an error: a value
cannot be bound there.
"""

from __future__ import annotations

from typing import Any

from pipegen.expr import Lit, Ref, Template, parse_template
from pipegen.runtime.templating import Values

# SQLAlchemy text() bind names; the prefix keeps them apart from anything a user could write.
_BIND = "pipegen_p"


class SqlTemplateError(ValueError):
    """A reference stands where SQL cannot take a bound value."""


def bind_sql(query: str, values: Values) -> tuple[str, dict[str, Any]]:
    """(SQL for SQLAlchemy text(), its bind values); without references, (query, {}) unchanged."""
    template = parse_template(query)
    if template.is_literal:
        return template.literal_text(), {}
    return _Scanner(values).scan(template.parts)


class _Scanner:
    def __init__(self, values: Values) -> None:
        self.values = values
        self.out: list[str] = []
        self.binds: dict[str, Any] = {}
        self.state = "sql"  # sql | string | ident | line_comment | block_comment
        self.string: list[str] = []  # the value of the quoted literal being read
        self.string_text: list[str] = []  # its SQL text as written (used when it holds no reference)
        self.string_refs = 0

    def scan(self, parts: tuple[Lit | Ref, ...]) -> tuple[str, dict[str, Any]]:
        for part in parts:
            if isinstance(part, Ref):
                self._ref(part)
            else:
                self._text(part.text)
        if self.state == "string":
            raise SqlTemplateError("the query ends inside a quoted string")
        return "".join(self.out), self.binds

    def _bind(self, value: Any) -> str:
        name = f"{_BIND}{len(self.binds)}"
        self.binds[name] = value
        return f":{name}"

    def _ref(self, ref: Ref) -> None:
        if self.state == "sql":
            value = self.values.params[ref.name] if ref.namespace == "params" else self._value_text(ref)
            self.out.append(self._bind(value))
        elif self.state == "string":
            self.string.append(self._value_text(ref))
            self.string_refs += 1
        else:
            where = "a quoted identifier" if self.state == "ident" else "a comment"
            raise SqlTemplateError(f"{ref} stands inside {where}, where no value can be bound")

    def _value_text(self, ref: Ref) -> str:
        return self.values.text(Template((ref,)))

    def _text(self, text: str) -> None:
        i = 0
        while i < len(text):
            c, pair = text[i], text[i : i + 2]
            if self.state == "sql":
                if c == "'":
                    self.state, self.string, self.string_text, self.string_refs = "string", [], ["'"], 0
                elif c == '"':
                    self.state = "ident"
                    self.out.append(c)
                elif pair == "--":
                    self.state = "line_comment"
                    self.out.append(pair)
                    i += 1
                elif pair == "/*":
                    self.state = "block_comment"
                    self.out.append(pair)
                    i += 1
                else:
                    # A literal colon must not read as a bind parameter in text().
                    self.out.append("\\:" if c == ":" else c)
            elif self.state == "string":
                if pair == "''":
                    self.string.append("'")
                    self.string_text.append("''")
                    i += 1
                elif c == "'":
                    self.string_text.append("'")
                    self._end_string()
                else:
                    self.string.append(c)
                    self.string_text.append("\\:" if c == ":" else c)
            elif self.state == "ident":
                self.out.append(c)
                if c == '"':
                    self.state = "sql"
            elif self.state == "line_comment":
                self.out.append("\\:" if c == ":" else c)
                if c == "\n":
                    self.state = "sql"
            else:
                if pair == "*/":
                    self.out.append(pair)
                    self.state = "sql"
                    i += 1
                else:
                    self.out.append("\\:" if c == ":" else c)
            i += 1

    def _end_string(self) -> None:
        self.state = "sql"
        if self.string_refs:
            self.out.append(self._bind("".join(self.string)))
        else:
            self.out.append("".join(self.string_text))


def render_gate(gate: dict[str, Any], values: Values) -> dict[str, Any]:
    """A gate with its references rendered: its query as SQL with bound parameters (`query_params`)."""
    rendered: dict[str, Any] = values.deep({k: v for k, v in gate.items() if k != "query"})
    if isinstance(gate.get("query"), str):
        sql, binds = bind_sql(gate["query"], values)
        rendered["query"] = sql
        if binds:
            rendered["query_params"] = binds
    return rendered
