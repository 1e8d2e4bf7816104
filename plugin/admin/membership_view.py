"""Team memberships: who was in which team of which workspace, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import joinedload

from ..i18n import _l
from ..models import Team, TeamMembership
from .base import BillingModelView, formatter, person_link, workspace_link
from .filters import InMembershipNowFilter


class MembershipView(BillingModelView):
    column_list = (
        "team.workspace.key",
        "team.name",
        "person.email",
        "person.name",
        "joined_at",
        "left_at",
    )
    column_labels = {
        "team.workspace.key": _l("Workspace"),
        "team.key": _l("Team key"),
        "team.name": _l("Team"),
        "person.email": _l("Person"),
        "person.name": _l("Name"),
        "joined_at": _l("Joined"),
        "left_at": _l("Left"),
    }
    column_formatters = {
        "team.workspace.key": formatter(lambda m: workspace_link(m.team.workspace.key)),
        "person.email": formatter(lambda m: person_link(m.person_id, m.person.email)),
    }
    column_searchable_list = ("person.email", "person.name", "team.name", "team.workspace.key")
    column_filters = (
        "team.workspace.key",
        "team.key",
        "team.name",
        "person.email",
        InMembershipNowFilter(),
        "joined_at",
        "left_at",
    )
    column_sortable_list = ("joined_at", "left_at", ("person.email", "person.email"))

    def get_query(self) -> Any:
        return (
            super()
            .get_query()
            .options(
                joinedload(TeamMembership.team).joinedload(Team.workspace),
                joinedload(TeamMembership.person),
            )
        )
