"""Strict loading of hand-edited YAML (and JSON) documents, with line numbers.

Both ``pricing_rules.yaml`` and the data-import files are written by people, not
programs, so every mistake must come back as a message naming the line and the
place in the document.  Plain ``yaml.safe_load`` cannot do that and has traps:
it keeps the last of two duplicate keys, expands aliases (a tiny file can hold
millions of leaves), and YAML 1.1 silently reads ``NO`` as false, ``1:30`` as 90,
``010`` as 8 and prices as floats.

:class:`StrictLoader` therefore builds plain data in which every scalar is a
``str`` (or ``None``), so that the marshmallow schemas decide what a value
means, and records the line of every node and which plain scalars are YAML 1.1
traps.  :func:`schema_load` runs a schema and refuses the traps wherever that
schema expects text or a number; :func:`located_errors` turns marshmallow's
nested messages into a flat, sorted list of :class:`LocatedError`.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .validators import InvalidValue, visible

DocPath = tuple[str | int, ...]

NULL_TAG = "tag:yaml.org,2002:null"
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_DEPTH = 64
TEXT_HINT = "write it in quotes if you mean the text"
#: Editors on Windows start UTF-8 files with it; it is not part of the document.
BOM = "\ufeff"


@dataclass(frozen=True)
class LocatedError:
    """One problem in a document: where (path and line) and what."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        if self.line is not None and self.column is not None:
            where = f"line {self.line}, column {self.column}: "
        what = f"{self.path}: " if self.path else ""
        return f"{where}{what}{self.message}"


class DocumentError(Exception):
    """The document cannot be read at all; ``errors`` lists every reason found."""

    def __init__(self, errors: list[LocatedError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


@dataclass(frozen=True)
class Document:
    """A parsed document: plain data plus what is needed to locate errors in it."""

    data: Any
    source: str = "<string>"
    lines: Mapping[DocPath, int] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    traps: frozenset[DocPath] = frozenset()

    def line_of(self, path: DocPath) -> int | None:
        """The 1-based line of the node at ``path`` (of its key, inside a mapping)."""
        return self.lines.get(tuple(path))


def format_path(path: DocPath) -> str:
    """``('workspaces', 1, 'teams', 0)`` → ``workspaces[1].teams[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[\w-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{visible(json.dumps(part, ensure_ascii=False))}]"
    return text


# YAML 1.1 surprises --------------------------------------------------------

_BOOLEAN = {"y", "n", "yes", "no", "on", "off", "true", "false"}
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+")
_HEX = re.compile(r"[-+]?0x[0-9a-fA-F_]+")
_OCTAL_12 = re.compile(r"[-+]?0o[0-7_]+")
_BINARY = re.compile(r"[-+]?0b[01_]+")
_SPECIAL = {".inf": "infinity", "+.inf": "infinity", "-.inf": "minus infinity", ".nan": "NaN"}


def yaml11_trap(text: str) -> str | None:
    """What YAML would make of this plain scalar if it is a trap, else ``None``.

    ``StrictLoader`` keeps these values as the text written; other YAML tools
    (and readers who know YAML) would read them otherwise, so the schemas
    refuse them where text or a number is expected.  ``true`` and ``false`` are
    traps too where text is expected, but fine where a boolean is.
    """
    if text.lower() in _BOOLEAN:
        return "a boolean"
    if text.lower() in _SPECIAL:
        return f"the special number {_SPECIAL[text.lower()]}"
    if _SEXAGESIMAL.fullmatch(text):
        return f"the number {_base60(text)} (base 60, like a clock time)"
    digits = text.replace("_", "").lstrip("+-")
    sign = "-" if text.startswith("-") else ""
    if _LEADING_ZERO.fullmatch(text):
        if set(digits) <= set("01234567"):
            return f"the octal number {sign}{int(digits, 8)}"
        return "a number with a leading zero (text in YAML 1.1, a number in YAML 1.2)"
    if _HEX.fullmatch(text):
        return f"the hexadecimal number {sign}{int(digits[2:], 16)}"
    if _OCTAL_12.fullmatch(text):
        return f"the octal number {sign}{int(digits[2:], 8)} (in YAML 1.2)"
    if _BINARY.fullmatch(text):
        return f"the binary number {sign}{int(digits[2:], 2)}"
    return None


def _base60(text: str) -> str:
    sign = "-" if text.startswith("-") else ""
    head, _, fraction = text.lstrip("+-").replace("_", "").partition(".")
    value = 0
    for part in head.split(":"):
        value = value * 60 + int(part)
    return f"{sign}{value}.{fraction}" if fraction else f"{sign}{value}"


# The loader ----------------------------------------------------------------


class _TooDeep(yaml.YAMLError):
    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line


class StrictLoader(yaml.SafeLoader):
    """A ``SafeLoader`` that builds plain text data and records lines and traps.

    Refused (collected in ``problems``, all of them, then raised together by
    :func:`load_document`): anchors, aliases, merge keys, tags other than
    ``!!str``, duplicate keys, keys that are not plain text.  Nesting deeper
    than ``MAX_DEPTH`` stops loading at once (the composer is recursive).
    Every scalar becomes a ``str``, except null (``~``, ``null``, nothing) which
    becomes ``None``; ``true``/``false`` stay the strings ``"true"``/``"false"``.
    ``lines`` maps each path to its line (a mapping entry's is its key's line);
    ``traps`` holds the paths of plain (unquoted, untagged) values that
    :func:`yaml11_trap` flags.  Keys are never traps: they are compared as
    the text written.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[DocPath, int] = {}
        self.traps: set[DocPath] = set()
        self.problems: list[tuple[DocPath, int | None, str]] = []
        self._refused: dict[int, str] = {}
        self._tagged_text: set[int] = set()
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self.get_event()
            node = ScalarNode(NULL_TAG, "", event.start_mark, event.end_mark)
            self._refused[id(node)] = (
                f"aliases (*{event.anchor}) are not allowed: write the value out in full"
            )
            return node
        refusal = None
        if event.anchor is not None:
            refusal = f"anchors (&{event.anchor}) are not allowed: write the value out in full"
            event.anchor = None
        tag = getattr(event, "tag", None)
        if tag not in (None, "!", STR_TAG):
            refusal = f"YAML tags ({tag}) are not allowed: write plain values"
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooDeep(event.start_mark.line + 1)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if refusal:
            self._refused[id(node)] = refusal
        elif tag == STR_TAG:
            self._tagged_text.add(id(node))
        return node

    def construct_document(self, node: Node) -> Any:
        return self._build(node, ())

    def _build(self, node: Node, path: DocPath) -> Any:
        line = node.start_mark.line + 1
        self.lines.setdefault(path, line)
        refusal = self._refused.get(id(node))
        if refusal:
            self.problems.append((path, line, refusal))
            return None
        if isinstance(node, ScalarNode):
            if node.tag == NULL_TAG:
                return None
            plain = node.style is None and id(node) not in self._tagged_text
            if plain and yaml11_trap(node.value):
                self.traps.add(path)
            return node.value
        if isinstance(node, SequenceNode):
            return [self._build(item, (*path, index)) for index, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self._build_mapping(node, path)
        raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover

    def _build_mapping(self, node: MappingNode, path: DocPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == MERGE_TAG:
                self.problems.append((path, line, "merge keys (<<) are not allowed"))
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag == NULL_TAG:
                self.problems.append((path, line, "keys must be plain text"))
                continue
            if id(key_node) in self._refused:
                self.problems.append((path, line, self._refused[id(key_node)]))
                continue
            key = key_node.value
            if key in result:
                first = self.lines[(*path, key)]
                self.problems.append(
                    ((*path, key), line, f"duplicate key: '{key}' is already given on line {first}")
                )
                continue
            self.lines[(*path, key)] = line
            result[key] = self._build(value_node, (*path, key))
        return result


def read_limited(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The bytes of the file at ``path``, refusing one over ``max_bytes`` before reading it.

    At most ``max_bytes + 1`` bytes are ever read, so a huge file (or one that
    grows while it is read) costs no more memory than the limit allows.
    """
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            raw = b"" if size > max_bytes else file.read(max_bytes + 1)
    except OSError as exc:
        raise DocumentError([
            LocatedError("", f"cannot read {path}: {exc.strerror or exc}")
        ]) from exc
    if size > max_bytes or len(raw) > max_bytes:
        raise DocumentError([_too_large(size if size > max_bytes else None, max_bytes)])
    return raw


def _too_large(size: int | None, max_bytes: int) -> LocatedError:
    """``size`` is ``None`` where it is unknown (a pipe, a file that grew while it was read)."""
    found = f"{size:,} bytes" if size is not None else f"more than {max_bytes:,} bytes"
    return LocatedError("", f"the file is too large: {found}, at most {max_bytes:,} are allowed")


def load_document(
    text: str | bytes, *, source: str = "<string>", max_bytes: int = 1_000_000
) -> Document:
    """Parse a YAML (or, when ``source`` ends in ``.json``, JSON) document strictly.

    The size is checked on the bytes before anything is parsed.  The top level
    must be a mapping.  Raises :class:`DocumentError` with every problem found.
    """
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        raise DocumentError([_too_large(len(raw), max_bytes)])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DocumentError([
                LocatedError("", "the file is not UTF-8 text: save it with the UTF-8 encoding",
                             line)
            ]) from exc
    text = text.removeprefix(BOM)
    document = _load_json(text, source) if source.endswith(".json") else _load_yaml(text, source)
    if not isinstance(document.data, dict):
        found = "nothing" if document.data is None else type(document.data).__name__
        raise DocumentError([
            LocatedError("", f"the top level must be a mapping of 'key: value' lines, not {found}",
                         document.line_of(()))
        ])
    return document


def _load_yaml(text: str, source: str) -> Document:
    loader = None
    try:
        loader = StrictLoader(text)
        data = loader.get_single_data()
    except _TooDeep as exc:
        raise DocumentError([
            LocatedError("", f"nested more than {MAX_DEPTH} levels deep", exc.line)
        ]) from exc
    except yaml.MarkedYAMLError as exc:
        raise DocumentError([_syntax_error(exc)]) from exc
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise DocumentError([
            LocatedError("", f"the control character U+{character:04X} is not allowed", line)
        ]) from exc
    finally:
        if loader is not None:
            loader.dispose()
    if loader.problems:
        raise DocumentError(_sorted(
            (path, LocatedError(format_path(path), message, line))
            for path, line, message in loader.problems
        ))
    return Document(data, source, MappingProxyType(loader.lines), frozenset(loader.traps))


def _syntax_error(exc: yaml.MarkedYAMLError) -> LocatedError:
    mark = exc.problem_mark or exc.context_mark
    message = f"syntax error: {exc.problem or exc.context}"
    if exc.problem and exc.context and exc.problem.startswith("but "):
        message = f"syntax error: {exc.context}, {exc.problem}"
    elif exc.problem and exc.context:
        where = ""
        if exc.context_mark is not None and exc.context_mark.line != mark.line:
            where = f" on line {exc.context_mark.line + 1}"
        message += f" ({exc.context}{where})"
    if "'\\t'" in message:
        message += "; indent with spaces, not tabs"
    return LocatedError("", message, mark.line + 1 if mark is not None else None)


class _Refused(ValueError):
    pass


def _load_json(text: str, source: str) -> Document:
    """Parse JSON with Python's own parser, then locate its nodes only if an error needs it."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                duplicates.append(key)
            result[key] = value
        return result

    def constant(name: str) -> Any:
        raise _Refused(f"{name} is not allowed: write a plain number")

    lines = _JsonLines(text)
    try:
        data = json.loads(
            text, object_pairs_hook=pairs, parse_int=str, parse_float=str, parse_constant=constant
        )
    except json.JSONDecodeError as exc:
        raise DocumentError([
            LocatedError("", f"syntax error: {exc.msg}", exc.lineno, exc.colno)
        ]) from exc
    except RecursionError as exc:
        raise DocumentError([_json_too_deep(text)]) from exc
    except _Refused as exc:
        raise DocumentError([LocatedError("", str(exc))]) from exc
    if _depth(data) > MAX_DEPTH:
        raise DocumentError([_json_too_deep(text)])
    if duplicates:
        raise DocumentError([
            LocatedError("", f"duplicate key: '{key}' is given twice in one object")
            for key in duplicates
        ])
    return Document(_json_text(data), source, lines)


def _depth(value: Any) -> int:
    """How deeply ``value`` nests, without recursion (a document may nest thousands deep)."""
    deepest, level = 0, [value]
    while level:
        deepest += 1
        level = [
            item
            for container in level
            if isinstance(container, dict | list)
            for item in (container.values() if isinstance(container, dict) else container)
            if isinstance(item, dict | list)
        ]
    return deepest


def _json_too_deep(text: str) -> LocatedError:
    """The error for JSON nested deeper than ``MAX_DEPTH``, at the first bracket too many."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        if token.group() in "{[":
            depth += 1
            if depth > MAX_DEPTH:
                line, column = _position(text, token.start())
                return LocatedError("", f"nested more than {MAX_DEPTH} levels deep", line, column)
        elif token.group() in "}]":
            depth -= 1
    return LocatedError("", f"nested more than {MAX_DEPTH} levels deep")


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


#: JSON's tokens, as far as locating nodes needs them: strings, scalars, punctuation.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+')


class _JsonLines(Mapping[DocPath, int]):
    """The line of every node of a JSON document that :func:`json.loads` accepted.

    Python's parser keeps no positions, so the document is tokenised again,
    but only when an error is to be located: a valid file pays nothing.
    A mapping entry's line is its key's, as in YAML.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines: dict[DocPath, int] | None = None

    def _build(self) -> dict[DocPath, int]:
        lines: dict[DocPath, int] = {(): 1}
        # One frame per open container: its path, and for an array the next index
        # (for an object, None while a key is due, else the key just read).
        stack: list[list[Any]] = []
        key_due = False
        line, last = 1, 0
        for token in _JSON_TOKEN.finditer(self._text):
            line += self._text.count("\n", last, token.start())
            last = token.start()
            value = token.group()
            if value in "}]":
                stack.pop()
                key_due = False
                continue
            if value == ",":
                frame = stack[-1]
                if frame[2]:
                    key_due = True
                else:
                    frame[1] += 1
                continue
            if value == ":":
                continue
            if key_due:
                key = json.loads(value) if value.startswith('"') else value
                stack[-1][1] = key
                lines[(*stack[-1][0], key)] = line
                key_due = False
                continue
            path: DocPath = ()
            if stack:
                frame = stack[-1]
                path = (*frame[0], frame[1])
                lines.setdefault(path, line)
            if value in "{[":
                is_object = value == "{"
                stack.append([path, None if is_object else 0, is_object])
                key_due = is_object
        return lines

    def _map(self) -> dict[DocPath, int]:
        if self._lines is None:
            self._lines = self._build()
        return self._lines

    def __getitem__(self, path: DocPath) -> int:
        return self._map()[path]

    def __iter__(self) -> Iterator[DocPath]:
        return iter(self._map())

    def __len__(self) -> int:
        return len(self._map())


def _json_text(value: Any) -> Any:
    """JSON's true/false as the same strings the YAML loader gives."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return {key: _json_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_text(item) for item in value]
    return value


# Marshmallow messages → located errors -------------------------------------


def located_errors(messages: dict | list, doc: Document) -> list[LocatedError]:
    """Flatten marshmallow's ``ValidationError.messages`` into located errors.

    Integer keys are list indexes; ``_schema`` holds the containing object's own
    errors.  A path that is not in the document (a missing key) takes the line
    of its nearest ancestor that is, except the top level, whose line says
    nothing.  Sorted by line (unknown lines last), then path.
    """
    found: list[tuple[DocPath, LocatedError]] = []
    for path, message in _leaves(messages, ()):
        found.append((path, LocatedError(format_path(path), message, _line_near(doc, path))))
    return _sorted(found)


def _leaves(messages: Any, path: DocPath) -> Iterator[tuple[DocPath, str]]:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            yield from _leaves(value, path if key == "_schema" else (*path, key))
    elif isinstance(messages, list | tuple):
        for item in messages:
            yield from _leaves(item, path)
    else:
        yield path, str(messages)


def _line_near(doc: Document, path: DocPath) -> int | None:
    for end in range(len(path), 0, -1):
        line = doc.line_of(path[:end])
        if line is not None:
            return line
    return None


def _sort_key(path: DocPath) -> tuple:
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in path)


def _sorted(found: Any) -> list[LocatedError]:
    unique: dict[LocatedError, DocPath] = {}
    for path, error in found:
        unique.setdefault(error, path)
    return sorted(
        unique,
        key=lambda error: (error.line is None, error.line or 0, _sort_key(unique[error])),
    )


# Fields read by plugin.validators -------------------------------------------


def checked(check: Callable[[Any], Any]) -> Callable[[Any], None]:
    """A marshmallow validator from a :mod:`plugin.validators` function (one rule per value)."""

    def validator(value: Any) -> None:
        try:
            check(value)
        except InvalidValue as exc:
            raise ValidationError(str(exc)) from None

    return validator


class CheckedText(fields.String):
    """Text read by a :mod:`plugin.validators` function, whose result becomes the value.

    Its :class:`~plugin.validators.InvalidValue` becomes the field's error, so
    a file's value is refused with the message the API, the CLI and the admin
    give for it, at the value's line.  A ``fields.String``, so that
    :func:`schema_load` refuses YAML 1.1 traps here as for any text.
    """

    def __init__(self, check: Callable[[str], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.check(text)
        except InvalidValue as exc:
            raise ValidationError(str(exc)) from None


# Refusing traps where a schema expects text or a number --------------------


def schema_load(schema: Schema, doc: Document) -> Any:
    """``schema.load(doc.data)``, also refusing YAML 1.1 traps where text or a number is due.

    Why not a field or a context variable: marshmallow fields do not know their
    path in the document, but the document knows the path of every trap.  So
    each trap path is walked through the schema's declared fields; when it ends
    at a ``fields.String`` or ``fields.Number`` (Decimal, Integer…), the value is
    refused with a message that replaces the field's own message there.
    Booleans, dates and custom fields are left to their own validation.
    A field can set a ``trap_hint`` attribute to say how to write the value.
    Raises ``ValidationError`` whose ``messages`` suit :func:`located_errors`.
    """
    traps = trap_messages(schema, doc)
    try:
        result = schema.load(doc.data)
    except ValidationError as exc:
        messages = copy.deepcopy(exc.messages)
        for path, message in traps:
            _put(messages, path, message)
        raise ValidationError(messages) from exc
    if traps:
        messages: dict = {}
        for path, message in traps:
            _put(messages, path, message)
        raise ValidationError(messages)
    return result


def trap_messages(schema: Schema, doc: Document) -> list[tuple[DocPath, str]]:
    """(path, message) for each trap in ``doc`` where ``schema`` expects text or a number."""
    found = []
    for path in sorted(doc.traps, key=_sort_key):
        target = _field_at(schema, path)
        if isinstance(target, fields.String | fields.Number):
            text = _value_at(doc.data, path)
            hint = getattr(target, "trap_hint", TEXT_HINT)
            found.append(
                (path, f"value '{text}' is read by YAML as {yaml11_trap(text)}; {hint}")
            )
    return found


def _field_at(schema: Schema, path: DocPath) -> Any:
    node: Any = schema
    for part in path:
        while isinstance(node, fields.Nested) and not node.many:
            node = node.schema
        if isinstance(node, fields.Nested):
            node = node.schema if isinstance(part, int) else None
        elif isinstance(node, Schema):
            node = _schema_field(node, part) if isinstance(part, str) else None
        elif isinstance(node, fields.List):
            node = node.inner if isinstance(part, int) else None
        elif isinstance(node, fields.Tuple):
            inner = node.tuple_fields
            node = inner[part] if isinstance(part, int) and part < len(inner) else None
        elif isinstance(node, fields.Mapping):
            node = node.value_field if isinstance(part, str) else None
        else:
            return None
        if node is None:
            return None
    return node


def _schema_field(schema: Schema, key: str) -> fields.Field | None:
    for name, candidate in schema.load_fields.items():
        if (candidate.data_key or name) == key:
            return candidate
    return None


def _value_at(data: Any, path: DocPath) -> Any:
    for part in path:
        data = data[part]
    return data


def _put(messages: dict, path: DocPath, message: str) -> None:
    node = messages
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return
        node = child
    node[path[-1]] = [message]
