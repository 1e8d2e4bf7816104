"""What the plugin adds to a host back-office, declared as data.

Like an Odoo module's ``__manifest__.py`` and ``ir.model.access.csv``: the
permissions with the roles that hold them by default, the views with their
menu entries, and each view's actions with the permission each needs.  The
extension registers the admin views from :data:`VIEWS` and nothing else;
every action a view runs, from a list's *With selected* menu or from a form
on one of its pages, is checked against its declaration on the server.

A host changes the declaration through its Flask config (read once, when
the extension is initialised, and checked then: a misspelt key stops the
app with the list of known ones):

- ``BILLING_VIEWS``: ``{view key: False}`` switches a view off (no menu entry,
  no route); ``{view key: "Menu name"}`` renames its menu entry.
- ``BILLING_ACTIONS``: ``{"view key.action": False}`` switches an action off:
  it leaves the menus and forms, and the server refuses it.
- ``BILLING_ACCESS``: ``{permission: [roles]}`` replaces the roles of a
  permission.

This module holds data only: no Flask, no database, nothing imported from
the adapters (view classes are named, and imported when views are built).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

READ = "read"


def N_(text: str) -> str:
    """Marks a menu name, action text or confirmation for the catalogue (``make translations``).

    The declaration stays plain data; the views translate these strings where
    they show them (:mod:`plugin.i18n`).
    """
    return text


#: permission -> the roles that hold it by default (the access table).
PERMISSIONS: Mapping[str, frozenset[str]] = {
    # Seeing the workspace, team, person, member, invoice and audit pages.
    READ: frozenset({"support", "admin", "accounting"}),
    # The billing dashboard: revenue per month and what needs attention.  Every role:
    # the invoice list shows each invoice's amounts to all three already, and support
    # acts on failed mail and pending PDFs.  A host narrows it with BILLING_ACCESS.
    "view_dashboard": frozenset({"support", "admin", "accounting"}),
    "archive_teams": frozenset({"support", "admin"}),
    "manage_workspaces": frozenset({"support", "admin"}),
    "manage_members": frozenset({"support", "admin"}),
    "purge_members": frozenset({"admin"}),
    "export_licences": frozenset({"admin", "accounting"}),
    "download_invoices": frozenset({"support", "admin", "accounting"}),
    "credit_notes": frozenset({"admin", "accounting"}),
    "view_rules": frozenset({"support", "admin", "accounting"}),
    "edit_rules": frozenset({"accounting"}),
    "change_mailbox": frozenset({"accounting"}),
    "resend_invoices": frozenset({"accounting"}),
    "edit_billing_details": frozenset({"accounting"}),
    "check_month": frozenset({"admin", "accounting"}),
    # Closing a month from the close page (the worker issues the invoices).
    "close_month": frozenset({"accounting"}),
}


@dataclass(frozen=True)
class Action:
    """Something a view does that changes or hands out data.

    ``bulk`` actions appear in the list's *With selected* menu (Flask-Admin
    calls the view's ``action_<name>`` method with the ticked ids); the
    others are forms, buttons and downloads on the view's pages.
    """

    name: str
    text: str
    permission: str
    bulk: bool = False
    confirmation: str | None = None


@dataclass(frozen=True)
class View:
    """One admin view: its menu entry, its route prefix and what it may do."""

    key: str
    menu: str
    view_class: str
    model: str | None = None
    permission: str = READ
    actions: tuple[Action, ...] = ()

    @property
    def endpoint(self) -> str:
        return f"billing_{self.key}"

    def action(self, name: str) -> Action:
        for declared in self.actions:
            if declared.name == name:
                return declared
        raise KeyError(f"{self.key} declares no action {name!r}")


ARCHIVE_CONFIRM = N_(
    "Archive the selected teams? They are still billed this month, no more from the next."
)
UNARCHIVE_CONFIRM = N_("Unarchive the selected teams? They are billed again from this month.")

#: The views, in menu order: the dashboard first, the Billing category's start page.
VIEWS: tuple[View, ...] = (
    View(
        "dashboard",
        N_("Dashboard"),
        "plugin.admin.dashboard_page:DashboardView",
        permission="view_dashboard",
    ),
    View(
        "workspaces",
        N_("Workspaces"),
        "plugin.admin.views:WorkspaceView",
        "Workspace",
        actions=(
            Action("export", N_("Export licence holders…"), "export_licences", bulk=True),
            Action("purge", N_("Remove inactive workspace members…"), "purge_members", bulk=True),
            Action("mailbox", N_("Change invoice mailbox…"), "change_mailbox", bulk=True),
            Action("archive_team", N_("Archive or unarchive a team"), "archive_teams"),
            Action("create_workspace", N_("Create a workspace"), "manage_workspaces"),
            Action("rename_workspace", N_("Rename the workspace"), "manage_workspaces"),
            Action("create_team", N_("Create a team"), "manage_workspaces"),
            Action("rename_team", N_("Rename a team"), "manage_workspaces"),
            Action("invite", N_("Invite a person"), "manage_members"),
            Action("add_to_team", N_("Add a member to a team"), "manage_members"),
            Action("remove_from_team", N_("Take a member out of a team"), "manage_members"),
            Action("remove_member", N_("Remove a member from the workspace"), "manage_members"),
            Action("add_owner", N_("Make a member an owner"), "manage_members"),
            Action("remove_owner", N_("Take a member's ownership away"), "manage_members"),
        ),
    ),
    View(
        "teams",
        N_("Teams"),
        "plugin.admin.team_view:TeamView",
        "Team",
        actions=(
            Action(
                "archive", N_("Archive"), "archive_teams", bulk=True, confirmation=ARCHIVE_CONFIRM
            ),
            Action(
                "unarchive",
                N_("Unarchive"),
                "archive_teams",
                bulk=True,
                confirmation=UNARCHIVE_CONFIRM,
            ),
        ),
    ),
    View(
        "people",
        N_("People"),
        "plugin.admin.person_view:PersonView",
        "Person",
        actions=(
            Action("rename_person", N_("Change the person's name"), "manage_members"),
            Action("change_email", N_("Change the person's e-mail address"), "manage_members"),
        ),
    ),
    View("members", N_("Members"), "plugin.admin.member_view:MemberView", "WorkspaceAccess"),
    View(
        "memberships",
        N_("Team memberships"),
        "plugin.admin.membership_view:MembershipView",
        "TeamMembership",
    ),
    View(
        "invoices",
        N_("Invoices"),
        "plugin.admin.invoice_view:InvoiceView",
        "Invoice",
        actions=(
            Action("download", N_("Download the PDF and the e-invoice XML"), "download_invoices"),
            Action("credit", N_("Issue a credit note"), "credit_notes"),
            Action("resend", N_("Resend the invoice mail"), "resend_invoices"),
        ),
    ),
    View("audit", N_("Audit log"), "plugin.admin.audit_view:AuditView", "AuditEntry"),
    View(
        "rules",
        N_("Pricing rules"),
        "plugin.admin.rules_page:RulesView",
        permission="view_rules",
        actions=(Action("edit", N_("Check and save the rules"), "edit_rules"),),
    ),
    View(
        "details",
        N_("Month close check"),
        "plugin.admin.billing_details_page:BillingDetailsView",
        permission="check_month",
        actions=(
            Action("edit", N_("Change a workspace's billing details"), "edit_billing_details"),
            Action("upload", N_("Upload billing details (CSV)"), "edit_billing_details"),
        ),
    ),
    View(
        "close",
        "Month close",
        "plugin.admin.close_page:ClosePage",
        permission="check_month",
        actions=(Action("close", "Close the month", "close_month"),),
    ),
)


class ManifestError(ValueError):
    """The host's BILLING_VIEWS / BILLING_ACTIONS / BILLING_ACCESS name something unknown."""


@dataclass(frozen=True)
class Module:
    """The declaration as one host configured it: views on, their menu names, actions on."""

    views: tuple[View, ...]
    menu: Mapping[str, str]
    enabled_actions: frozenset[str] = field(default_factory=frozenset)
    access: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def view(self, key: str) -> View | None:
        return next((view for view in self.views if view.key == key), None)

    def action_enabled(self, view_key: str, action: str) -> bool:
        return f"{view_key}.{action}" in self.enabled_actions


def configure(
    views: Mapping[str, Any] | None = None,
    actions: Mapping[str, Any] | None = None,
    access: Mapping[str, Iterable[str]] | None = None,
    declared: tuple[View, ...] = VIEWS,
) -> Module:
    """Apply a host's overrides to the declaration, refusing keys it does not know."""
    views, actions, access = views or {}, actions or {}, access or {}
    by_key = {view.key: view for view in declared}
    errors = [
        f"BILLING_VIEWS: no view {key!r} (views: {', '.join(by_key)})"
        for key in views
        if key not in by_key
    ]
    errors += [
        f"BILLING_VIEWS[{key!r}]: {value!r} is neither True, False nor a menu name"
        for key, value in views.items()
        if not isinstance(value, (bool, str)) or value == ""
    ]
    known_actions = {f"{view.key}.{action.name}" for view in declared for action in view.actions}
    errors += [
        f"BILLING_ACTIONS: no action {key!r} (actions: {', '.join(sorted(known_actions))})"
        for key in actions
        if key not in known_actions
    ]
    errors += [
        f"BILLING_ACTIONS[{key!r}]: {value!r} is neither True nor False"
        for key, value in actions.items()
        if not isinstance(value, bool)
    ]
    errors += [
        f"BILLING_ACCESS: no permission {key!r} (permissions: {', '.join(PERMISSIONS)})"
        for key in access
        if key not in PERMISSIONS
    ]
    errors += [
        f"BILLING_ACCESS[{key!r}]: give a list of roles, not a string"
        for key, roles in access.items()
        if isinstance(roles, str)
    ]
    if errors:
        raise ManifestError("\n".join(errors))
    shown = tuple(view for view in declared if views.get(view.key, True) is not False)
    return Module(
        views=shown,
        menu={
            view.key: value if isinstance(value := views.get(view.key), str) else view.menu
            for view in shown
        },
        enabled_actions=frozenset(
            key
            for key in known_actions
            if actions.get(key, True) and key.split(".", 1)[0] in {v.key for v in shown}
        ),
        access={**PERMISSIONS, **{key: frozenset(roles) for key, roles in access.items()}},
    )
