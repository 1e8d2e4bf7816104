"""The strict YAML reader: plain text data, every node's line, YAML 1.1 traps flagged.

Plain ``yaml.safe_load`` has traps for a hand-edited file: it keeps the last
of two duplicate keys, expands aliases (a tiny file can hold millions of
leaves), and YAML 1.1 silently reads ``NO`` as false, ``1:30`` as 90, ``010``
as 8 and prices as floats.  :class:`StrictLoader` therefore builds plain data
in which every scalar is a ``str`` (or ``None``), so that the marshmallow
schemas decide what a value means (:mod:`plugin.documents.schemas`).
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .document import (
    MAX_DEPTH,
    DocPath,
    Document,
    DocumentError,
    LocatedError,
    format_path,
    sorted_errors,
)

NULL_TAG = "tag:yaml.org,2002:null"
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"

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

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            self.get_event()  # type: ignore[no-untyped-call]
            # The stubs type the C loader's marks apart; both have what a node needs.
            marks = (event.start_mark, event.end_mark)
            node: Node | None = ScalarNode(NULL_TAG, "", *marks)  # type: ignore[arg-type]
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


def load_yaml(text: str, source: str) -> Document:
    loader = None
    try:
        loader = StrictLoader(text)
        data = loader.get_single_data()
    except _TooDeep as exc:
        raise DocumentError(
            [LocatedError("", f"nested more than {MAX_DEPTH} levels deep", exc.line)]
        ) from exc
    except yaml.MarkedYAMLError as exc:
        raise DocumentError([_syntax_error(exc)]) from exc
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise DocumentError(
            [LocatedError("", f"the control character U+{character:04X} is not allowed", line)]
        ) from exc
    finally:
        if loader is not None:
            loader.dispose()
    if loader.problems:
        raise DocumentError(
            sorted_errors(
                (path, LocatedError(format_path(path), message, line))
                for path, line, message in loader.problems
            )
        )
    return Document(data, source, MappingProxyType(loader.lines), frozenset(loader.traps))


def _syntax_error(exc: yaml.MarkedYAMLError) -> LocatedError:
    mark = exc.problem_mark or exc.context_mark
    message = f"syntax error: {exc.problem or exc.context}"
    if exc.problem and exc.context and exc.problem.startswith("but "):
        message = f"syntax error: {exc.context}, {exc.problem}"
    elif exc.problem and exc.context:
        where = ""
        if exc.context_mark is not None and mark is not None and exc.context_mark.line != mark.line:
            where = f" on line {exc.context_mark.line + 1}"
        message += f" ({exc.context}{where})"
    if "'\\t'" in message:
        message += "; indent with spaces, not tabs"
    return LocatedError("", message, mark.line + 1 if mark is not None else None)
