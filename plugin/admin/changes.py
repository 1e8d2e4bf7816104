"""Changes as a reader takes them in: a table of changed fields, and a diff marked line by line.

The audit log stores the state before and after a change as JSON and, for a
pricing-rules edit, the unified diff of the file (:func:`difflib.unified_diff`,
made by :func:`plugin.services.rules_editor.rules_diff`).  The audit pages and
the rules editor's check page show them through these functions, so a change
reads the same wherever it appears.  Every instant among the values is written
in the billing time zone and the page's locale (:func:`plugin.formatting.instant`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from markupsafe import Markup

from ..formatting import instant
from ..i18n import _
from ..instants import parse_instant

#: An ISO 8601 instant with an offset, as ``datetime.isoformat()`` writes it into a text.
_ISO_INSTANT = re.compile(
    r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[+-]\d{2}:\d{2}|Z)"
)


@dataclass(frozen=True)
class FieldChange:
    """One field of an audit entry: its value before and after (``None``: absent)."""

    field: str
    before: Any
    after: Any


def changed_fields(before: Any, after: Any) -> list[FieldChange]:
    """The fields whose value differs, in the order they were written (before's first).

    Two mappings compare field by field; a field unchanged is left out.  Any
    other value (a list, a number, nothing) is one field, ``value``.
    """
    if isinstance(before, Mapping) or isinstance(after, Mapping):
        old = before if isinstance(before, Mapping) else {}
        new = after if isinstance(after, Mapping) else {}
        names = [*old, *(name for name in new if name not in old)]
        return [
            FieldChange(str(name), old.get(name), new.get(name))
            for name in names
            if old.get(name) != new.get(name)
        ]
    if before == after:
        return []
    return [FieldChange("value", before, after)]


def value_text(value: Any, zone: tzinfo) -> str:
    """A stored value as text: instants in ``zone``, lists joined, nothing as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, str):
        found = parse_instant(value)
        return instant(found, zone) if found is not None else value
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {value_text(item, zone)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(value_text(item, zone) for item in value) if value else "—"
    return str(value)


def changes_table(changes: Iterable[FieldChange], zone: tzinfo) -> Markup:
    """The changed fields as a small table (field, before, after)."""
    rows = Markup("").join(
        Markup(
            '<tr><th scope="row" class="change-field">{}</th>'
            '<td class="change-before">{}</td><td class="change-after">{}</td></tr>'
        ).format(change.field, value_text(change.before, zone), value_text(change.after, zone))
        for change in changes
    )
    if not rows:
        return Markup('<span class="text-muted">{}</span>').format(_("no field changed"))
    return Markup(
        '<table class="table table-sm table-borderless mb-0 billing-changes">'
        "<thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>"
    ).format(_("Field"), _("Before"), _("After"), rows)


def instants_in_text(text: str, zone: tzinfo) -> str:
    """``text`` with every ISO instant in it written in ``zone``, the way the pages write one."""

    def local(match: re.Match[str]) -> str:
        found = parse_instant(match[0].replace("Z", "+00:00"))
        return instant(found, zone) if found is not None else match[0]

    return _ISO_INSTANT.sub(local, text)


def diff_kind(line: str) -> str:
    """What a line of a unified diff is: ``file``, ``hunk``, ``added``, ``removed`` or ``same``."""
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "added"
    if line.startswith("-"):
        return "removed"
    return "same"


def diff_block(lines: Iterable[str], element_id: str = "") -> Markup:
    """A unified diff, each line marked by its kind (``diff-added``, ``diff-removed`` …)
    and, for readers without colours, by its leading ``+`` or ``-``."""
    body = Markup("").join(
        Markup('<span class="diff-line diff-{}">{}</span>\n').format(diff_kind(line), line)
        for line in lines
    )
    id_attribute = Markup(' id="{}"').format(element_id) if element_id else Markup("")
    return Markup('<pre class="border bg-light p-2 small billing-diff"{}>{}</pre>').format(
        id_attribute, body
    )


def looks_like_diff(text: str) -> bool:
    """Whether an audit entry's detail is a unified diff (a rules edit's)."""
    return text.startswith("--- ") and "\n+++ " in text
