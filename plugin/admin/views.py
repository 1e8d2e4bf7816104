"""Flask-Admin views of the plugin's models.

The lists are read-only: every change (archiving, the purge, mailbox changes,
user management, billing details, credit notes) goes through a domain
service, so that it is validated and lands in the audit log.  Endpoints are
prefixed ``billing_`` so that they never collide with the host's own views.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import expose
from markupsafe import Markup
from sqlalchemy.orm import with_expression

from .. import api, models
from ..extension import billing
from ..formatting import number
from ..i18n import _, _l, ngettext
from ..manifest import Module
from ..models import Workspace
from ..services.counts import current_counts, listed_stamp
from ..services.member_list import current_members
from ..types import utcnow
from . import mailbox_page, workspace_manage, workspace_page
from .base import (
    BillingModelView,
    CsrfForm,
    licences_label,
    local_minute,
    person_link,
    refuse_stale_form,
)
from .bulk import list_query_string, matching_ids
from .filters import VARIANT_CHOICES, ChoiceFilter, VariantFilter
from .responses import refuse

TEAM_QUESTIONS = {
    "archive": _l(
        "Archive the team %(team)s of the workspace %(workspace)s? "
        "It is still billed this month, no more from the next."
    ),
    "unarchive": _l(
        "Unarchive the team %(team)s of the workspace %(workspace)s? "
        "It is billed again from this month."
    ),
}
VARIANT_LABELS = {"team_licences": _l("Team licences"), "user_licences": _l("User licences")}
REASON_LABELS = {"contract": _l("individual contract"), "cutover": _l("by creation date")}


def _counted(attribute: str) -> Callable[[WorkspaceView, Any, Workspace, str], Any]:
    def formatter(view: WorkspaceView, context: Any, model: Workspace, name: str) -> Any:
        counts = g.billing_counts.get(model.id)
        return number(getattr(counts, attribute)) if counts else ""

    return formatter


def _licences(view: WorkspaceView, context: Any, model: Workspace, name: str) -> str:
    counts = g.billing_counts.get(model.id)
    return licences_label(counts.licences_this_month, counts.variant) if counts else ""


def _variant(view: WorkspaceView, context: Any, model: Workspace, name: str) -> Markup:
    counts = g.billing_counts.get(model.id)
    if counts is None:
        return Markup("")
    return Markup("{}<br><small class='text-muted'>{}</small>").format(
        str(VARIANT_LABELS[counts.variant]), str(REASON_LABELS[counts.variant_reason])
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
    column_labels = {
        "name": _l("Name"),
        "key": _l("Key"),
        "variant": _l("Variant"),
        "members": _l("Members"),
        "licences_this_month": _l("Licences this month"),
        "active_members": _l("Active members"),
        "active_teams": _l("Active teams"),
        "invoice_mailbox": _l("Invoice mailbox"),
        "contract_variant": _l("Contract variant"),
        "created_at": _l("Created at"),
    }
    column_formatters = {
        "name": _workspace_link,
        "variant": _variant,
        "members": _counted("members"),
        "active_members": _counted("active_members"),
        "active_teams": _counted("active_teams"),
        "licences_this_month": _licences,
    }
    column_searchable_list = ("key", "name", "invoice_mailbox")
    column_filters = (
        "name",
        "key",
        VariantFilter(),
        ChoiceFilter(Workspace.contract_variant, _l("Contract variant"), VARIANT_CHOICES),
        "invoice_mailbox",
        "created_at",
    )
    column_sortable_list = ("name", "key", "invoice_mailbox")
    column_default_sort = "key"

    def get_query(self) -> Any:
        """The page's workspaces with their stamps, which the counts cache checks."""
        session = billing().session
        return (
            super()
            .get_query()
            .options(with_expression(Workspace.listed_stamp, listed_stamp(session)))
        )

    def page_data(self, rows: list[Any]) -> dict[str, Any]:
        """The page's workspaces' current counts (through the counts cache)."""
        ext = billing()
        counts = current_counts(
            ext.session, ext.rules(), rows, utcnow(), cache=ext.counts_cache(), stamped=True
        )
        return {"counts": counts}

    def action_export(self, ids: list[str]) -> Any:
        return redirect(url_for(".export_selected", ids=",".join(ids)))

    def action_purge(self, ids: list[str]) -> Any:
        """The purge is previewed and confirmed per workspace: one at a time."""
        keys = workspace_page.keys_of(workspace_page.parse_ids(",".join(ids)))
        if len(keys) != 1:
            flash(
                _("Select exactly one workspace: its inactive members are previewed first."),
                "error",
            )
            return redirect(url_for(".index_view"))
        return redirect(url_for(".purge", key=keys[0]))

    def action_mailbox(self, ids: list[str]) -> Any:
        return redirect(url_for(".change_mailbox", ids=",".join(ids)))

    @expose("/mailbox", methods=["GET", "POST"])
    def change_mailbox(self) -> Any:
        """Ask for the address, then change it for the ticked (or all matching) workspaces."""
        self.require_action("mailbox")
        ids = (
            matching_ids(self)
            if request.args.get("all")
            else workspace_page.parse_ids(request.args.get("ids", ""))
        )
        workspaces = mailbox_page.targets(ids)
        if not workspaces:
            abort(400, description=_("No workspace selected."))
        single = workspaces[0].key if len(workspaces) == 1 else None
        back = (
            url_for(".workspace_page", key=single)
            if single
            else url_for(".index_view", **list_query_string({"ids", "all"}))
        )
        form = mailbox_page.MailboxForm()
        query: dict[str, Any] = request.args.to_dict()
        if request.method == "POST":
            valid = form.validate()
            if "csrf_token" in form.errors:
                refuse_stale_form()
            if valid and mailbox_page.apply([ws.id for ws in workspaces], form.address.data or ""):
                return redirect(back)
        return self.render(
            "billing/admin/mailbox.html",
            form=form,
            workspaces=workspaces,
            shown=mailbox_page.SHOWN,
            back=back,
            action_url=url_for(".change_mailbox", **query),
        )

    @expose("/export-selected")
    def export_selected(self) -> Any:
        """Ask for the month, then download one file, or a ZIP with a file per workspace.

        ``ids`` are the ticked rows; with ``all=1`` every workspace matching the
        list's filters (carried in the query string) is exported.
        """
        self.require_action("export")
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
        return self._workspace_page(workspace_page.load_workspace(key))

    def _workspace_page(self, workspace: Workspace, forms: dict[str, Any] | None = None) -> str:
        ext = billing()
        total, members = current_members(ext.session, workspace.id, utcnow())
        return self.render(
            "billing/admin/workspace.html",
            purge_url=url_for(".purge", key=workspace.key),
            licences_label=licences_label,
            members_total=total,
            members=members,
            manage={**workspace_manage.empty_forms(), **(forms or {})},
            may={action: self.can(action) for action in workspace_manage.OPERATIONS},
            person_link=person_link,
            when=local_minute,
            **workspace_page.page_context(workspace),
        )

    @expose("/w/<key>/manage/<action>", methods=["GET", "POST"])
    def manage(self, key: str, action: str) -> Any:
        """One user-management form of the workspace page (removal is confirmed first)."""
        if action not in workspace_manage.OPERATIONS:
            abort(404)
        self.require_action(action)
        workspace = workspace_page.load_workspace(key)
        if request.method == "GET":
            if action != "remove_member":
                abort(405)
            form = workspace_manage.form_for(action)
            form.email.data = request.args.get("email", "")
            return self.render("billing/admin/remove_member.html", workspace=workspace, form=form)
        form = workspace_manage.form_for(action, request.form)
        valid = form.validate()
        if "csrf_token" in form.errors:
            refuse_stale_form()
        result = workspace_manage.run(action, workspace.key, form) if valid else None
        if result is None:
            return self._workspace_page(workspace, forms={action: form}), 422
        flash(workspace_manage.message(action, result, form), "success")
        section = "#teams" if action in ("create_team", "rename_team") else "#members"
        return redirect(url_for(".workspace_page", key=workspace.key) + section)

    @expose("/new-workspace", methods=["GET", "POST"])
    def create_workspace(self) -> Any:
        self.require_action("create_workspace")
        form = workspace_manage.NewWorkspaceForm()
        if request.method == "POST":
            valid = form.validate()
            if "csrf_token" in form.errors:
                refuse_stale_form()
            if valid:
                try:
                    row = api.create_workspace(
                        key=form.key.data or "",
                        name=form.name.data or "",
                        actor=billing().actor(),
                    )
                except api.ManagementError as exc:
                    refuse(form, exc)
                else:
                    flash(
                        _("Created the workspace %(name)s (%(key)s).", name=row.name, key=row.key),
                        "success",
                    )
                    return redirect(url_for(".workspace_page", key=row.key))
            return self.render("billing/admin/new_workspace.html", form=form), 422
        return self.render("billing/admin/new_workspace.html", form=form)

    @expose("/w/<key>/export")
    def workspace_export(self, key: str) -> Any:
        self.require_action("export")
        return workspace_page.export_response(workspace_page.load_workspace(key))

    @expose("/w/<key>/teams/<team_key>", methods=["GET", "POST"])
    def team_state(self, key: str, team_key: str) -> Any:
        """Archive or unarchive a team: a confirmation page first, then the change."""
        self.require_action("archive_team")
        archive = request.values.get("archived") == "yes"
        form = CsrfForm()
        if request.method == "GET":
            workspace = workspace_page.load_workspace(key)
            teams = workspace_page.teams_now(billing().session, workspace.id, utcnow())
            team = next((team for team in teams if team.key == team_key), None)
            if team is None:
                abort(404, description=_("No team %(team)r in %(workspace)s.", team=team_key,
                                         workspace=workspace.key))
            verb = "archive" if archive else "unarchive"
            names = {
                "team": f"{team.name} ({team.key})",
                "workspace": f"{workspace.name} ({workspace.key})",
            }
            return self.render(
                "billing/admin/confirm_team.html",
                form=form,
                workspace=workspace,
                team=team,
                team_key=team_key,
                archived="yes" if archive else "no",
                question=str(TEAM_QUESTIONS[verb]) % names,
                verb=verb,
            )
        if not form.validate_on_submit():
            refuse_stale_form()
        change = workspace_page.change_team(key, team_key, archive=archive)
        if not change.changed:
            already = (
                _("%(team)s was already archived.", team=team_key)
                if archive
                else _("%(team)s was already active.", team=team_key)
            )
            flash(already, "info")
        elif archive:
            flash(
                _(
                    "Archived %(team)s: it is billed for this month, no more from the next.",
                    team=team_key,
                ),
                "success",
            )
        else:
            flash(
                _("Unarchived %(team)s: it is billed again from this month on.", team=team_key),
                "success",
            )
        return redirect(url_for(".workspace_page", key=key))

    @expose("/w/<key>/purge", methods=["GET", "POST"])
    def purge(self, key: str) -> Any:
        """Preview first (who goes, who stays and why), then the confirmed removal."""
        self.require_action("purge")
        workspace = workspace_page.load_workspace(key)
        form = CsrfForm()
        if request.method == "POST":
            if not form.validate_on_submit():
                refuse_stale_form()
            result = workspace_page.purge(workspace, request.form.getlist("person"))
            removed = len(result.removed)
            flash(
                ngettext(
                    "Removed %(num)d inactive member.", "Removed %(num)d inactive members.", removed
                ),
                "success",
            )
            if result.kept_since_preview:
                names = ", ".join(member.email for member in result.kept_since_preview)
                flash(_("Kept, active again since the preview: %(names)s", names=names), "info")
            return redirect(url_for(".workspace_page", key=key) + "#members")
        preview = workspace_page.purge_preview(workspace)
        return self.render(
            "billing/admin/purge.html", workspace=workspace, preview=preview, form=form
        )


def build_views(db: Any, module: Module, category: str) -> list[Any]:
    """The views the module declares and the host left on, in menu order."""
    views = []
    for declared in module.views:
        view_class = _import(declared.view_class)
        args = (getattr(models, declared.model), db) if declared.model else ()
        views.append(
            view_class(
                *args,
                declaration=declared,
                name=_l(module.menu[declared.key]),
                category=_l(category),
                endpoint=declared.endpoint,
            )
        )
    return views


def _import(name: str) -> Any:
    module_name, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
