"""Marshmallow schemas over a strict document: YAML 1.1 traps refused where text is due.

:func:`schema_load` runs a schema and refuses the traps wherever that schema
expects text or a number; :class:`CheckedText` and :func:`checked` let a
:mod:`plugin.validators` function read a value, with its message.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields

from ..validators import InvalidValue
from .document import DocPath, Document, sort_key
from .yaml_reader import yaml11_trap

TEXT_HINT = "write it in quotes if you mean the text"


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
        found: dict[str | int, Any] = (
            copy.deepcopy(exc.messages) if isinstance(exc.messages, dict) else {}
        )
        for path, message in traps:
            _put(found, path, message)
        raise ValidationError(found) from exc
    if traps:
        refused: dict[str | int, Any] = {}
        for path, message in traps:
            _put(refused, path, message)
        raise ValidationError(refused)
    return result


def trap_messages(schema: Schema, doc: Document) -> list[tuple[DocPath, str]]:
    """(path, message) for each trap in ``doc`` where ``schema`` expects text or a number."""
    found = []
    for path in sorted(doc.traps, key=sort_key):
        target = _field_at(schema, path)
        if isinstance(target, fields.String | fields.Number):
            text = _value_at(doc.data, path)
            hint = getattr(target, "trap_hint", TEXT_HINT)
            found.append((path, f"value '{text}' is read by YAML as {yaml11_trap(text)}; {hint}"))
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


def _schema_field(schema: Schema, key: str) -> fields.Field[Any] | None:
    for name, candidate in schema.load_fields.items():
        if (candidate.data_key or name) == key:
            return candidate
    return None


def _value_at(data: Any, path: DocPath) -> Any:
    for part in path:
        data = data[part]
    return data


def _put(messages: dict[str | int, Any], path: DocPath, message: str) -> None:
    node = messages
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return
        node = child
    node[path[-1]] = [message]
