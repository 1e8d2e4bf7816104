"""Flask-Admin views of the plugin's models.

The views are read-only: every change goes through a domain service (import,
and later archive, purge, mailbox changes) so that it is validated and lands
in the audit log.  Endpoints are prefixed ``billing_`` so that they never
collide with the host's own views.
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from markupsafe import Markup
from sqlalchemy import Text, cast, func
from sqlalchemy.orm import defer, with_expression

from ..extension import billing
from ..models import (
    AuditEntry,
    Invoice,
    Person,
    Team,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
)
from ..services.counts import current_counts
from ..types import utcnow
from . import mailbox_page, workspace_page
from .base import BillingModelView, CsrfForm, licences_label, refuse_stale_form
from .billing_details_page import BillingDetailsView
from .bulk import list_query_string, matching_ids
from .filters import MentionsFilter
from .invoice_view import InvoiceView
from .member_view import MemberView
from .rules_page import RulesView
from .team_view import TeamView

VARIANT_LABELS = {"team_licences": "Team licences", "user_licences": "User licences"}
REASON_LABELS = {"contract": "individual contract", "cutover": "by creation date"}


def _counted(attribute: str):
    def formatter(view: WorkspaceView, context: Any, model: Workspace, name: str) -> Any:
        counts = g.billing_counts.get(model.id)
        return getattr(counts, attribute) if counts else ""

    return formatter


def _licences(view: WorkspaceView, context: Any, model: Workspace, name: str) -> str:
    counts = g.billing_counts.get(model.id)
    return licences_label(counts.licences_this_month, counts.variant) if counts else ""


def _variant(view: WorkspaceView, context: Any, model: Workspace, name: str) -> Markup:
    counts = g.billing_counts.get(model.id)
    if counts is None:
        return Markup("")
    return Markup("{}<br><small class='text-muted'>{}</small>").format(
        VARIANT_LABELS[counts.variant], REASON_LABELS[counts.variant_reason]
    )


def _workspace_link(view: WorkspaceView, context: Any, model: Workspace, name: str) -> Markup:
    return Markup('<a href="{}">{}</a>').format(
        url_for(".workspace_page", key=model.key), model.name
    )


class WorkspaceView(BillingModelView):
    """Workspaces with their current counts: a fixed number of queries per page.

    The counts of the whole page come from :func:`current_counts` (set-based
    queries, not a query per row), kept in the app's counts cache under each
    workspace's stamp: a page whose workspaces did not change since it was
    last shown reads only their stamps.
    """

    list_template = "billing/admin/workspace_list.html"
    column_list = (
        "name",
        "key",
        "variant",
        "members",
        "active_members",
        "active_teams",
        "licences_this_month",
        "invoice_mailbox",
    )
    column_labels = {  # noqa: RUF012
        "licences_this_month": "Licences this month",
        "active_members": "Active members",
        "active_teams": "Active teams",
    }
    column_formatters = {  # noqa: RUF012
        "name": _workspace_link,
        "variant": _variant,
        "members": _counted("members"),
        "active_members": _counted("active_members"),
        "active_teams": _counted("active_teams"),
        "licences_this_month": _licences,
    }
    column_searchable_list = ("key", "name", "invoice_mailbox")
    column_filters = ("contract_variant", "created_at")
    column_sortable_list = ("name", "key", "invoice_mailbox")
    column_default_sort = "key"

    def get_list(self, *args: Any, **kwargs: Any) -> tuple[int | None, list]:
        count, workspaces = super().get_list(*args, **kwargs)
        ext = billing()
        g.billing_counts = current_counts(
            ext.session, ext.rules(), workspaces, utcnow(), cache=ext.counts_cache()
        )
        return count, workspaces

    action_permissions = {  # noqa: RUF012
        "export": "export_licences",
        "purge": "purge_members",
        "mailbox": "change_mailbox",
    }

    @action("export", "Export licence holders…")
    def action_export(self, ids: list[str]) -> Any:
        return redirect(url_for(".export_selected", ids=",".join(ids)))

    @action("purge", "Remove inactive workspace members…")
    def action_purge(self, ids: list[str]) -> Any:
        """The purge is previewed and confirmed per workspace: one at a time."""
        keys = workspace_page.keys_of(workspace_page.parse_ids(",".join(ids)))
        if len(keys) != 1:
            flash(
                "Select exactly one workspace: its inactive members are previewed first.", "error"
            )
            return redirect(url_for(".index_view"))
        return redirect(url_for(".purge", key=keys[0]))

    @action("mailbox", "Change invoice mailbox…")
    def action_mailbox(self, ids: list[str]) -> Any:
        return redirect(url_for(".change_mailbox", ids=",".join(ids)))

    @expose("/mailbox", methods=["GET", "POST"])
    def change_mailbox(self) -> Any:
        """Ask for the address, then change it for the ticked (or all matching) workspaces."""
        self.require("change_mailbox")
        ids = (
            matching_ids(self)
            if request.args.get("all")
            else workspace_page.parse_ids(request.args.get("ids", ""))
        )
        workspaces = mailbox_page.targets(ids)
        if not workspaces:
            abort(400, description="No workspace selected.")
        single = workspaces[0].key if len(workspaces) == 1 else None
        back = (
            url_for(".workspace_page", key=single)
            if single
            else url_for(".index_view", **list_query_string({"ids", "all"}))
        )
        form = mailbox_page.MailboxForm()
        if request.method == "POST":
            valid = form.validate()
            if "csrf_token" in form.errors:
                refuse_stale_form()
            if valid and mailbox_page.apply([ws.id for ws in workspaces], form.address.data):
                return redirect(back)
        return self.render(
            "billing/admin/mailbox.html",
            form=form,
            workspaces=workspaces,
            shown=mailbox_page.SHOWN,
            back=back,
            action_url=url_for(".change_mailbox", **request.args),
        )

    @expose("/export-selected")
    def export_selected(self) -> Any:
        """Ask for the month, then download one file, or a ZIP with a file per workspace.

        ``ids`` are the ticked rows; with ``all=1`` every workspace matching the
        list's filters (carried in the query string) is exported.
        """
        self.require("export_licences")
        ids = (
            matching_ids(self)
            if request.args.get("all")
            else workspace_page.parse_ids(request.args.get("ids", ""))
        )
        if "month" not in request.args:
            return self.render(
                "billing/admin/export_selected.html",
                count=len(ids),
                **workspace_page.export_choices(),
            )
        return workspace_page.exports_response(ids)

    @expose("/w/<key>/")
    def workspace_page(self, key: str) -> Any:
        workspace = workspace_page.load_workspace(key)
        return self.render(
            "billing/admin/workspace.html",
            team_forms=CsrfForm(),
            purge_url=url_for(".purge", key=key),
            licences_label=licences_label,
            **workspace_page.page_context(workspace),
        )

    @expose("/w/<key>/export")
    def workspace_export(self, key: str) -> Any:
        self.require("export_licences")
        return workspace_page.export_response(workspace_page.load_workspace(key))

    @expose("/w/<key>/teams/<team_key>", methods=["POST"])
    def team_state(self, key: str, team_key: str) -> Any:
        self.require("archive_teams")
        form = CsrfForm()
        if not form.validate_on_submit():
            refuse_stale_form()
        archive = request.form.get("archived") == "yes"
        change = workspace_page.change_team(key, team_key, archive=archive)
        if not change.changed:
            flash(f"{team_key} was already {'archived' if archive else 'active'}.", "info")
        elif archive:
            flash(
                f"Archived {team_key}: it is billed for this month, no more from the next.",
                "success",
            )
        else:
            flash(f"Unarchived {team_key}: it is billed again from this month on.", "success")
        return redirect(url_for(".workspace_page", key=key))

    @expose("/w/<key>/purge", methods=["GET", "POST"])
    def purge(self, key: str) -> Any:
        """Preview first (who goes, who stays and why), then the confirmed removal."""
        self.require("purge_members")
        workspace = workspace_page.load_workspace(key)
        form = CsrfForm()
        if request.method == "POST":
            if not form.validate_on_submit():
                refuse_stale_form()
            result = workspace_page.purge(workspace, request.form.getlist("person"))
            flash(f"Removed {len(result.removed)} inactive member(s).", "success")
            if result.kept_since_preview:
                names = ", ".join(member.email for member in result.kept_since_preview)
                flash(f"Kept, active again since the preview: {names}", "info")
            return redirect(url_for(".workspace_page", key=key) + "#members")
        preview = workspace_page.purge_preview(workspace)
        return self.render(
            "billing/admin/purge.html", workspace=workspace, preview=preview, form=form
        )


class PersonView(BillingModelView):
    column_list = ("email", "name")
    column_searchable_list = ("email", "name")
    column_default_sort = "email"


class MembershipView(BillingModelView):
    column_select_related_list = (TeamMembership.team, TeamMembership.person)
    column_list = ("team.name", "person.email", "joined_at", "left_at")
    column_labels = {"team.name": "Team", "person.email": "Person"}  # noqa: RUF012
    column_searchable_list = ("person.email",)


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
    column_labels = {"workspace.key": "Workspace"}  # noqa: RUF012
    column_filters = ("workspace.key", "actor", "action", "at", MentionsFilter())
    column_searchable_list = ("target", "detail")
    column_sortable_list = ("at", "actor", "action", "target")
    column_formatters = {"before": _excerpt, "after": _excerpt}  # noqa: RUF012
    column_formatters_detail = {"before": _whole, "after": _whole}  # noqa: RUF012
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


#: What the module adds to the back-office, declared as data: (view class,
#: model, menu name, endpoint).
VIEWS: tuple[tuple[type[ModelView], type, str, str], ...] = (
    (WorkspaceView, Workspace, "Workspaces", "billing_workspaces"),
    (TeamView, Team, "Teams", "billing_teams"),
    (PersonView, Person, "People", "billing_people"),
    (MemberView, WorkspaceAccess, "Members", "billing_members"),
    (MembershipView, TeamMembership, "Team memberships", "billing_memberships"),
    (InvoiceView, Invoice, "Invoices", "billing_invoices"),
    (AuditView, AuditEntry, "Audit log", "billing_audit"),
)


def build_views(db: Any, category: str) -> list[Any]:
    views: list[Any] = [
        view(model, db, name=name, category=category, endpoint=endpoint)
        for view, model, name, endpoint in VIEWS
    ]
    views.append(RulesView(name="Pricing rules", category=category, endpoint="billing_rules"))
    views.append(
        BillingDetailsView(name="Month close check", category=category, endpoint="billing_details")
    )
    return views
