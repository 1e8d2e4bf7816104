"""The JSON reader: Python's own parser, then the same plain text data the YAML reader gives.

Numbers stay the text written and ``true``/``false`` become the strings the
YAML reader gives, so one schema reads both; lines are found only when an
error is to be located.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .document import MAX_DEPTH, DocPath, Document, DocumentError, LocatedError


class _Refused(ValueError):
    pass


def load_json(text: str, source: str) -> Document:
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
        raise DocumentError(
            [LocatedError("", f"syntax error: {exc.msg}", exc.lineno, exc.colno)]
        ) from exc
    except RecursionError as exc:
        raise DocumentError([_json_too_deep(text)]) from exc
    except _Refused as exc:
        raise DocumentError([LocatedError("", str(exc))]) from exc
    if _depth(data) > MAX_DEPTH:
        raise DocumentError([_json_too_deep(text)])
    if duplicates:
        raise DocumentError(
            [
                LocatedError("", f"duplicate key: '{key}' is given twice in one object")
                for key in duplicates
            ]
        )
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
