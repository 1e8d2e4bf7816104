"""Workspace members: who has (or had) access to which workspace, active or not."""

from __future__ import annotations

from typing import Any

from flask import g
from sqlalchemy import select

from ..extension import billing
from ..i18n import _, _l
from ..models import WorkspaceAccess
from .base import BillingModelView, formatter, person_link, workspace_link
from .filters import ActiveMemberFilter, HasAccessFilter, in_active_team_now


def _active(view: MemberView, context: Any, model: WorkspaceAccess, name: str) -> str:
    return _("active") if model.id in g.billing_active_access else _("inactive")


class MemberView(BillingModelView):
    stamped_total = True
    column_select_related_list = (WorkspaceAccess.workspace, WorkspaceAccess.person)
    column_list = (
        "workspace.key",
        "person.email",
        "person.name",
        "member",
        "granted_at",
        "revoked_at",
    )
    column_labels = {
        "workspace": _l("Workspace"),
        "person": _l("Person"),
        "workspace.key": _l("Workspace"),
        "person.email": _l("E-mail"),
        "person.name": _l("Name"),
        "member": _l("In an active team"),
        "granted_at": _l("Access from"),
        "revoked_at": _l("Access until"),
    }
    column_formatters = {
        "member": _active,
        "workspace.key": formatter(lambda m: workspace_link(m.workspace.key)),
        "person.email": formatter(lambda m: person_link(m.person_id, m.person.email)),
    }
    column_searchable_list = ("person.email", "person.name", "workspace.key")
    column_filters = (
        "workspace.key",
        "person.email",
        "person.name",
        HasAccessFilter(),
        ActiveMemberFilter(),
        "granted_at",
        "revoked_at",
    )
    column_sortable_list = ("granted_at", "revoked_at", ("person.email", "person.email"))
    column_default_sort = ("granted_at", True)

    def page_data(self, rows: list[Any]) -> dict[str, Any]:
        """Which of the page's accesses are in an active team now."""
        active = select(WorkspaceAccess.id).where(
            WorkspaceAccess.id.in_([row.id for row in rows]), in_active_team_now()
        )
        return {"active_access": set(billing().session.scalars(active))}
