"""Load a spec file into plain data plus a source map from data paths to file positions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipegen.diagnostics import Diagnostic, Location, diag

# libyaml's parser is several times faster than the pure-Python one and keeps node marks.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
}
# Aliases can make a small file expand exponentially ("billion laughs"); no real spec comes near this.
# Counted are the values an alias repeats, not the values written out: those the file's size bounds.
MAX_VALUES = 100_000
# The deepest nesting of mappings and sequences a spec may have; real specs use under ten levels.
MAX_DEPTH = 64

PathKey = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of the loaded data stands in the file."""

    file: str
    values: dict[PathKey, Location] = field(default_factory=dict)
    keys: dict[PathKey, Location] = field(default_factory=dict)

    def value(self, path: PathKey) -> Location:
        """The location of the value at path, or of its nearest located ancestor."""
        return _nearest(self.values, path, self.file)

    def key(self, path: PathKey) -> Location:
        """The location of the mapping key that ends path, else of the value."""
        if path in self.keys:
            return self.keys[path]
        return self.value(path)


def _nearest(table: dict[PathKey, Location], path: PathKey, file: str) -> Location:
    for end in range(len(path), -1, -1):
        loc = table.get(path[:end])
        if loc is not None:
            return loc
    return Location(file)


@dataclass(frozen=True)
class Source:
    """A spec file as read: its display path, text and digest."""

    path: str
    text: str

    @property
    def sha256(self) -> str:
        """The hex sha256 of the file's bytes as UTF-8."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass
class Loaded:
    """The result of loading: data and source map, or diagnostics."""

    source: Source
    data: dict[str, Any] | None
    smap: SourceMap
    diagnostics: list[Diagnostic]


def read_source(path: str) -> Source | Diagnostic:
    """Read a spec file as UTF-8, or say why it cannot be read."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return diag("PG100", f"cannot read spec: {exc.strerror or exc}", Location(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return diag("PG100", f"spec is not valid UTF-8 (byte {exc.start})", Location(path), "save the file as UTF-8")
    return Source(path, text)


def load_text(source: Source) -> Loaded:
    """Parse YAML text into data, a source map and load diagnostics."""
    smap = SourceMap(source.path)
    too_deep = _too_deep(source)
    if too_deep is not None:
        return Loaded(source, None, smap, [too_deep])
    loader = _Loader(source.text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return Loaded(source, None, smap, [_yaml_error(source.path, exc, source.text)])
    except yaml.YAMLError as exc:
        return Loaded(source, None, smap, [diag("PG101", f"YAML error: {exc}", Location(source.path))])
    finally:
        loader.dispose()
    if node is None:
        return Loaded(source, None, smap, [diag("PG102", "spec is empty", Location(source.path))])
    if not isinstance(node, yaml.MappingNode):
        return Loaded(
            source, None, smap, [diag("PG103", "spec must be a mapping at its top level", _mark(source.path, node))]
        )
    builder = _Builder(source.path, smap)
    try:
        data = builder.build(node, ())
    except RecursionError:
        return Loaded(source, None, smap, [diag("PG107", "spec is nested too deeply", _mark(source.path, node))])
    except _TooLarge as exc:
        return Loaded(
            source,
            None,
            smap,
            [
                diag(
                    "PG107",
                    f"spec expands to more than {MAX_VALUES} values (through YAML aliases)",
                    exc.location,
                    "write the values out instead of nesting aliases",
                )
            ],
        )
    if builder.diagnostics:
        return Loaded(source, None, smap, builder.diagnostics)
    assert isinstance(data, dict)
    return Loaded(source, data, smap, [])


def load_file(path: str) -> Loaded:
    """Read and parse a spec file."""
    read = read_source(path)
    if isinstance(read, Diagnostic):
        return Loaded(Source(path, ""), None, SourceMap(path), [read])
    return load_text(read)


def _too_deep(source: Source) -> Diagnostic | None:
    """The first collection nested deeper than MAX_DEPTH, found from the parser's events.

    libyaml's composer builds nodes recursively in C: a few kilobytes of `[[[[...` overflow its stack
    and kill the process (exit 139) before any Python code can catch it. The event stream is flat, so
    counting depth there is safe at any nesting; a syntax error is left for the composer to report.
    """
    depth = 0
    try:
        for event in yaml.parse(source.text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    where = Location(source.path, mark.line + 1, mark.column + 1) if mark else Location(source.path)
                    return diag(
                        "PG107",
                        f"spec nests collections more than {MAX_DEPTH} deep",
                        where,
                        "a pipeline spec needs a handful of levels: flatten this value",
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None
    return None


def _mark(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _yaml_error(file: str, exc: yaml.MarkedYAMLError, text: str) -> Diagnostic:
    problem = exc.problem or "invalid YAML"
    mark, context = exc.problem_mark, exc.context_mark
    # At end of file the problem mark is past the last line; where the construct opened is more useful.
    if context is not None and (mark is None or "end of stream" in problem):
        mark = context
    loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
    if exc.context and "expected a single document" in exc.context:
        return diag("PG106", "a spec holds one YAML document; found another", loc)
    if "cannot start any token" in problem and _char_at(text, exc.problem_mark) == "\t":
        return diag(
            "PG101", "a tab character is used for indentation", loc, "indent with spaces; YAML does not allow tabs"
        )
    text = problem
    if exc.context:
        opened = (
            f" (opened at line {context.line + 1}, column {context.column + 1})"
            if context and context is not mark
            else ""
        )
        text = f"{exc.context}{opened}: {problem}"
    return diag("PG101", f"YAML syntax error: {text}", loc)


def _char_at(text: str, mark: yaml.Mark | None) -> str:
    if mark is None:
        return ""
    lines = text.splitlines()
    if mark.line >= len(lines) or mark.column >= len(lines[mark.line]):
        return ""
    return lines[mark.line][mark.column]


class _TooLarge(Exception):
    def __init__(self, location: Location) -> None:
        self.location = location


class _Builder:
    """Turns composed YAML nodes into Python data while recording locations."""

    def __init__(self, file: str, smap: SourceMap) -> None:
        self.file = file
        self.smap = smap
        self.diagnostics: list[Diagnostic] = []
        self._constructor = yaml.SafeLoader("")
        self._count = 0
        self._built: set[int] = set()

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        # A node built before is reached again through an alias: only such repeats count towards the bound.
        if id(node) in self._built:
            self._count += 1
            if self._count > MAX_VALUES:
                raise _TooLarge(_mark(self.file, node))
        else:
            self._built.add(id(node))
        self.smap.values[path] = _mark(self.file, node)
        if node.tag not in _PLAIN_TAGS:
            self.diagnostics.append(
                diag(
                    "PG107",
                    f"YAML tag '{node.tag}' is not supported",
                    _mark(self.file, node),
                    "remove the tag; specs hold plain values",
                )
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag == _STR_TAG:  # most of a spec: what SafeConstructor.construct_yaml_str returns, without its calls
            return node.value
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.diagnostics.append(diag("PG107", f"cannot read this value: {problem}", _mark(self.file, node)))
            return None

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.diagnostics.append(
                    diag(
                        "PG107",
                        "YAML merge keys ('<<') are not supported",
                        _mark(self.file, key_node),
                        "repeat the keys, or put shared settings under 'defaults'",
                    )
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.diagnostics.append(
                    diag("PG107", "a mapping key must be a plain scalar", _mark(self.file, key_node))
                )
                continue
            # Keys are kept as written: YAML 1.1 would turn `on:` or `yes:` into booleans.
            key = str(key_node.value)
            key_path = (*path, key)
            key_loc = _mark(self.file, key_node)
            if key in out:
                first = self.smap.keys[key_path]
                self.diagnostics.append(
                    diag("PG104", f"duplicate key '{key}' (first defined at line {first.line})", key_loc)
                )
                continue
            self.smap.keys[key_path] = key_loc
            out[key] = self.build(value_node, key_path)
        return out
