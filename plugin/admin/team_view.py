"""Teams: list with status, archive / unarchive as bulk actions."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select

from ..extension import billing
from ..i18n import _, _l
from ..models import Team
from ..services.intervals import team_archived_at
from ..services.teams import archive_teams, unarchive_teams
from ..types import utcnow
from .base import BillingModelView, CsrfForm, formatter, refuse_stale_form, workspace_link
from .bulk import list_query_string, matching_ids
from .filters import TeamArchivedFilter


def _status(view: TeamView, context: Any, model: Team, name: str) -> str:
    return _("archived") if model.id in g.billing_archived else _("active")


class TeamView(BillingModelView):
    stamped_total = True
    list_template = "billing/admin/team_list.html"
    column_select_related_list = (Team.workspace,)
    column_list = ("workspace.key", "key", "name", "status", "created_at")
    column_labels = {
        "workspace": _l("Workspace"),
        "workspace.key": _l("Workspace"),
        "key": _l("Key"),
        "name": _l("Name"),
        "status": _l("Status"),
        "created_at": _l("Created at"),
    }
    column_formatters = {
        "status": _status,
        "workspace.key": formatter(lambda m: workspace_link(m.workspace.key)),
    }
    column_searchable_list = ("key", "name", "workspace.key")
    column_filters = ("workspace.key", "key", "name", TeamArchivedFilter(), "created_at")
    column_sortable_list = ("key", "name", "created_at", ("workspace.key", "workspace.key"))
    column_default_sort = "key"

    def page_data(self, rows: list[Any]) -> dict[str, Any]:
        """Which of the page's teams are archived now."""
        archived = select(Team.id).where(
            Team.id.in_([team.id for team in rows]), team_archived_at(utcnow())
        )
        return {"archived": set(billing().session.scalars(archived))}

    def _change(self, ids: list[int], *, archive: bool) -> None:
        ext = billing()
        service = archive_teams if archive else unarchive_teams
        change = service(ext.session, ids, now=utcnow(), actor=ext.actor())
        ext.session.commit()
        changed, unchanged = len(change.changed), len(change.unchanged)
        message = (
            _(
                "Archived %(changed)d team(s); %(unchanged)d already were.",
                changed=changed,
                unchanged=unchanged,
            )
            if archive
            else _(
                "Unarchived %(changed)d team(s); %(unchanged)d already were.",
                changed=changed,
                unchanged=unchanged,
            )
        )
        flash(message, "success")

    def action_archive(self, ids: list[str]) -> None:
        self._change([int(i) for i in ids], archive=True)

    def action_unarchive(self, ids: list[str]) -> None:
        self._change([int(i) for i in ids], archive=False)

    @expose("/all/<verb>", methods=["GET", "POST"])
    def apply_to_all(self, verb: str) -> Any:
        """Archive or unarchive every team matching the list's filters, after a confirmation."""
        if verb not in ("archive", "unarchive"):
            abort(404)
        self.require_action(verb)
        archive = verb == "archive"
        ids = matching_ids(self)
        form = CsrfForm()
        if request.method == "POST":
            if not form.validate_on_submit():
                refuse_stale_form()
            self._change(ids, archive=archive)
            return redirect(url_for(".index_view", **list_query_string()))
        return self.render(
            "billing/admin/confirm_all.html",
            form=form,
            count=len(ids),
            verb=verb,
            question=_(self.declaration.action(verb).confirmation or ""),
            back=url_for(".index_view", **list_query_string()),
            action_url=url_for(".apply_to_all", verb=verb, **list_query_string()),
        )
