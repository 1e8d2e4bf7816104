"""A parsed hand-edited document and its errors, located by path and line.

Both ``pricing_rules.yaml`` and the data-import files are written by people,
not programs, so every mistake must come back as a message naming the line and
the place in the document: :class:`Document` keeps the line of every node,
:func:`located_errors` turns marshmallow's nested messages into a flat, sorted
list of :class:`LocatedError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..validators import visible

DocPath = tuple[str | int, ...]

#: Deepest nesting a document may have (YAML and JSON alike).
MAX_DEPTH = 64


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


def located_errors(messages: dict[str, Any] | list[Any], doc: Document) -> list[LocatedError]:
    """Flatten marshmallow's ``ValidationError.messages`` into located errors.

    Integer keys are list indexes; ``_schema`` holds the containing object's own
    errors.  A path that is not in the document (a missing key) takes the line
    of its nearest ancestor that is, except the top level, whose line says
    nothing.  Sorted by line (unknown lines last), then path.
    """
    found: list[tuple[DocPath, LocatedError]] = []
    for path, message in _leaves(messages, ()):
        found.append((path, LocatedError(format_path(path), message, _line_near(doc, path))))
    return sorted_errors(found)


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


def sort_key(path: DocPath) -> tuple[Any, ...]:
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in path)


def sorted_errors(found: Any) -> list[LocatedError]:
    unique: dict[LocatedError, DocPath] = {}
    for path, error in found:
        unique.setdefault(error, path)
    return sorted(
        unique,
        key=lambda error: (error.line is None, error.line or 0, sort_key(unique[error])),
    )
