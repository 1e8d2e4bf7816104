"""People: everyone who has or had access to a workspace, and each person's page."""

from __future__ import annotations

from typing import Any

from flask import abort
from flask_admin import expose

from ..extension import billing
from ..services.person_overview import person_overview
from ..types import utcnow
from .base import BillingModelView, formatter, link, local_minute, person_link, workspace_link


class PersonView(BillingModelView):
    column_list = ("email", "name")
    column_searchable_list = ("email", "name")
    column_filters = ("email", "name")
    column_formatters = {"email": formatter(lambda m: person_link(m.id, m.email))}  # noqa: RUF012
    column_default_sort = "email"

    @expose("/p/<int:person_id>/")
    def person_page(self, person_id: int) -> Any:
        """Their workspaces and teams now and over time, the months billed, the audit entries."""
        ext = billing()
        try:
            overview = person_overview(ext.session, person_id, ext.rules().zoneinfo, utcnow())
        except LookupError as exc:
            abort(404, description=str(exc))
        return self.render(
            "billing/admin/person.html",
            overview=overview,
            when=local_minute,
            workspace_link=workspace_link,
            link=link,
        )
