"""Flask-Admin views of the plugin's models.

The views are read-only: every change goes through a domain service (import,
and later archive, purge, mailbox changes) so that it is validated and lands
in the audit log.  Endpoints are prefixed ``billing_`` so that they never
collide with the host's own views.
"""

from __future__ import annotations

from typing import Any

from flask_admin.contrib.sqla import ModelView

from ..models import AuditEntry, Person, Team, TeamMembership, Workspace, WorkspaceAccess
from .base import BillingModelView


class WorkspaceView(BillingModelView):
    column_list = ("key", "name", "created_at", "contract_variant", "invoice_mailbox")
    column_searchable_list = ("key", "name")
    column_filters = ("contract_variant", "created_at")
    column_default_sort = "key"


class TeamView(BillingModelView):
    column_list = ("workspace.key", "key", "name", "created_at")
    column_labels = {"workspace.key": "Workspace"}  # noqa: RUF012
    column_searchable_list = ("key", "name", "workspace.key")
    column_default_sort = "key"


class PersonView(BillingModelView):
    column_list = ("email", "name")
    column_searchable_list = ("email", "name")
    column_default_sort = "email"


class AccessView(BillingModelView):
    column_list = ("workspace.key", "person.email", "granted_at", "revoked_at")
    column_labels = {"workspace.key": "Workspace", "person.email": "Person"}  # noqa: RUF012
    column_searchable_list = ("person.email", "workspace.key")


class MembershipView(BillingModelView):
    column_list = ("team.name", "person.email", "joined_at", "left_at")
    column_labels = {"team.name": "Team", "person.email": "Person"}  # noqa: RUF012
    column_searchable_list = ("person.email",)


class AuditView(BillingModelView):
    column_list = ("at", "actor", "action", "target", "detail", "before", "after")
    column_filters = ("actor", "action", "at")
    column_default_sort = ("at", True)


#: What the module adds to the back-office, declared as data: (view class,
#: model, menu name, endpoint).
VIEWS: tuple[tuple[type[ModelView], type, str, str], ...] = (
    (WorkspaceView, Workspace, "Workspaces", "billing_workspaces"),
    (TeamView, Team, "Teams", "billing_teams"),
    (PersonView, Person, "People", "billing_people"),
    (AccessView, WorkspaceAccess, "Workspace access", "billing_access"),
    (MembershipView, TeamMembership, "Team memberships", "billing_memberships"),
    (AuditView, AuditEntry, "Audit log", "billing_audit"),
)


def build_views(db: Any, category: str) -> list[ModelView]:
    return [
        view(model, db, name=name, category=category, endpoint=endpoint)
        for view, model, name, endpoint in VIEWS
    ]
