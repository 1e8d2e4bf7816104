"""The audit log: who changed what, when, with the values before and after."""

from __future__ import annotations

import json
from typing import Any

from flask import url_for
from markupsafe import Markup
from sqlalchemy import Text, cast, func
from sqlalchemy.orm import defer, with_expression

from ..models import AuditEntry
from .base import BillingModelView
from .filters import MentionsFilter

#: Characters of ``before`` / ``after`` the audit list shows; the entry's page shows all.
EXCERPT = 300


def _excerpt(view: AuditView, context: Any, model: AuditEntry, name: str) -> Any:
    text = getattr(model, f"{name}_excerpt")
    if text is None or len(text) < EXCERPT:
        return text or ""
    return Markup('{}… <a href="{}">whole entry</a>').format(
        text, url_for(".details_view", id=model.id)
    )


def _whole(view: AuditView, context: Any, model: AuditEntry, name: str) -> Markup:
    value = getattr(model, name)
    if value is None:
        return Markup("")
    return Markup("<pre>{}</pre>").format(json.dumps(value, indent=1, ensure_ascii=False))


def _stored_start(column: Any) -> Any:
    return func.substr(cast(column, Text), 1, EXCERPT)


class AuditView(BillingModelView):
    """The audit log; the list shows the start of each value, the entry's page all of it."""

    column_select_related_list = (AuditEntry.workspace,)
    column_list = ("at", "actor", "action", "workspace.key", "target", "detail", "before", "after")
    column_labels = {"workspace.key": "Workspace"}
    column_filters = ("workspace.key", "actor", "action", "target", "at", MentionsFilter())
    column_searchable_list = ("target", "detail")
    column_sortable_list = ("at", "actor", "action", "target")
    column_formatters = {"before": _excerpt, "after": _excerpt}
    column_formatters_detail = {"before": _whole, "after": _whole}
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
