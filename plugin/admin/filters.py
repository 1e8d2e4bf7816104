"""Custom list filters that ask "right now" questions of the history tables."""

from __future__ import annotations

from typing import Any

from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from sqlalchemy import Text, cast, exists, func, or_, select

from ..models import AuditEntry, Team, TeamMembership, WorkspaceAccess
from ..services.counts import open_at, team_active_at, team_archived_at
from ..types import utcnow

YES_NO = (("yes", "yes"), ("no", "no"))


class NowFilter(BaseSQLAFilter):
    """A yes/no filter on a condition evaluated at the moment the page is built."""

    def __init__(self, column: Any, name: str) -> None:
        super().__init__(column, name, options=YES_NO)

    def condition(self) -> Any:
        raise NotImplementedError

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        condition = self.condition()
        return query.filter(condition if value == "yes" else ~condition)

    def operation(self) -> str:
        return "is"


class TeamArchivedFilter(NowFilter):
    def __init__(self) -> None:
        super().__init__(Team.id, "Archived now")

    def condition(self) -> Any:
        return team_archived_at(utcnow())


class HasAccessFilter(NowFilter):
    def __init__(self) -> None:
        super().__init__(WorkspaceAccess.id, "Has access now")

    def condition(self) -> Any:
        return open_at(WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at, utcnow())


def in_active_team_now() -> Any:
    """The access row's person is, right now, in an active team of its workspace."""
    now = utcnow()
    return exists(
        select(TeamMembership.id)
        .join(Team, Team.id == TeamMembership.team_id)
        .where(
            TeamMembership.person_id == WorkspaceAccess.person_id,
            Team.workspace_id == WorkspaceAccess.workspace_id,
            open_at(TeamMembership.joined_at, TeamMembership.left_at, now),
            team_active_at(now),
        )
    )


class ActiveMemberFilter(NowFilter):
    def __init__(self) -> None:
        super().__init__(WorkspaceAccess.id, "Active member now")

    def condition(self) -> Any:
        return in_active_team_now()


class MentionsFilter(BaseSQLAFilter):
    """Audit entries whose target, detail, before or after contain the text (any case).

    How to find the purge that removed somebody: its one entry lists every
    removed person's e-mail in ``before``.
    """

    def __init__(self) -> None:
        super().__init__(AuditEntry.id, "Mentions")

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        text = str(value).strip().lower()
        columns = (AuditEntry.target, AuditEntry.detail, AuditEntry.before, AuditEntry.after)
        return query.filter(
            or_(
                *(
                    func.lower(cast(column, Text)).contains(text, autoescape=True)
                    for column in columns
                )
            )
        )

    def operation(self) -> str:
        return "contains"
