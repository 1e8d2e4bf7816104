"""The audit log: who changed what, when, with the changed fields before and after."""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import Any

from flask import url_for
from markupsafe import Markup
from sqlalchemy import Text, cast, func
from sqlalchemy.orm import defer, with_expression

from ..extension import billing
from ..i18n import _, _l
from ..models import AuditEntry
from ..services.rules_editor import EDIT_ACTION as RULES_EDIT
from .base import BillingModelView
from .changes import changed_fields, changes_table, diff_block, instants_in_text
from .filters import MentionsFilter

#: Characters of ``before`` / ``after`` the audit list reads; the entry's page shows all.
EXCERPT = 300
#: Lines of a rules diff the list shows; the entry's page shows all of it.
LIST_DIFF_LINES = 12


def _zone() -> tzinfo:
    return billing().rules().zoneinfo


def _whole_entry(model: AuditEntry, text: str) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url_for(".details_view", id=model.id), text)


def _parsed_excerpt(text: str | None) -> tuple[bool, Any]:
    """(complete, value): an excerpt shorter than :data:`EXCERPT` is the whole stored JSON."""
    if text is None:
        return True, None
    if len(text) >= EXCERPT:
        return False, None
    return True, json.loads(text)


def _list_changes(view: AuditView, context: Any, model: AuditEntry, name: str) -> Markup:
    """The changed fields, when both values are short enough to be read with the list;
    otherwise the start of each and a link to the whole entry."""
    before_complete, before = _parsed_excerpt(model.before_excerpt)
    after_complete, after = _parsed_excerpt(model.after_excerpt)
    if before_complete and after_complete:
        return changes_table(changed_fields(before, after), _zone())
    starts = Markup("").join(
        Markup('<div class="small text-muted">{}: {}…</div>').format(label, text)
        for label, text in ((_("Before"), model.before_excerpt), (_("After"), model.after_excerpt))
        if text
    )
    return starts + _whole_entry(model, _("All changed fields"))


def _whole_changes(view: AuditView, context: Any, model: AuditEntry, name: str) -> Markup:
    return changes_table(changed_fields(model.before, model.after), _zone())


def _detail(shown_lines: int | None) -> Any:
    """The detail text: a rules edit's diff as a diff (its first lines in the list), any
    other text with its instants in the billing time zone."""

    def render(view: AuditView, context: Any, model: AuditEntry, name: str) -> Any:
        text = model.detail or ""
        if model.action != RULES_EDIT or not text.startswith("--- "):
            return instants_in_text(text, _zone())
        lines = text.split("\n")
        if shown_lines is None or len(lines) <= shown_lines:
            return diff_block(lines)
        more = _("%(num)d more line(s): whole diff", num=len(lines) - shown_lines)
        return diff_block(lines[:shown_lines]) + _whole_entry(model, more)

    return render


def _stored_start(column: Any) -> Any:
    return func.substr(cast(column, Text), 1, EXCERPT)


class AuditView(BillingModelView):
    """The audit log; the list shows the changed fields of each entry, the entry's page all.

    ``before`` and ``after`` are not loaded with the list (a purge's entry can
    hold megabytes): the list reads their first :data:`EXCERPT` characters,
    which for almost every entry are the whole value.
    """

    list_template = "billing/admin/audit_list.html"
    details_template = "billing/admin/audit_details.html"
    column_select_related_list = (AuditEntry.workspace,)
    column_list = ("at", "actor", "action", "workspace.key", "target", "detail", "changes")
    column_details_list = ("at", "actor", "action", "workspace", "target", "detail", "changes")
    # Lazy: Flask-Admin keeps the labels and shows them as text in each request.
    column_labels = {
        "at": _l("At"),
        "actor": _l("Actor"),
        "action": _l("Action"),
        "workspace": _l("Workspace"),
        "workspace.key": _l("Workspace"),
        "target": _l("Target"),
        "detail": _l("Detail"),
        "changes": _l("Changed fields"),
    }
    column_filters = ("workspace.key", "actor", "action", "target", "at", MentionsFilter())
    column_searchable_list = ("target", "detail")
    column_sortable_list = ("at", "actor", "action", "target")
    column_formatters = {
        "changes": _list_changes,
        "detail": _detail(LIST_DIFF_LINES),
    }
    column_formatters_detail = {
        "changes": _whole_changes,
        "detail": _detail(None),
        "workspace": lambda view, context, model, name: (
            model.workspace.key if model.workspace else "—"
        ),
    }
    column_default_sort = ("at", True)

    def get_query(self) -> Any:
        return (
            super()
            .get_query()
            .options(
                defer(AuditEntry.before),
                defer(AuditEntry.after),
                with_expression(AuditEntry.before_excerpt, _stored_start(AuditEntry.before)),
                with_expression(AuditEntry.after_excerpt, _stored_start(AuditEntry.after)),
            )
        )
