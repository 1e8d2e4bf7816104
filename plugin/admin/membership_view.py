"""Team memberships: who was in which team of which workspace, and when."""

from __future__ import annotations

from ..models import TeamMembership
from .base import BillingModelView


class MembershipView(BillingModelView):
    column_select_related_list = (TeamMembership.team, TeamMembership.person)
    column_list = ("team.name", "person.email", "joined_at", "left_at")
    column_labels = {"team.name": "Team", "person.email": "Person"}  # noqa: RUF012
    column_searchable_list = ("person.email",)
