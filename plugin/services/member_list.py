"""A workspace's members right now, with their teams and since when (the workspace page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from ..models import Person, Team, TeamMembership, WorkspaceAccess, WorkspaceOwner
from .intervals import open_at

#: The most members the page lists by name; the member list pages through the rest.
SHOWN = 200


@dataclass(frozen=True)
class MemberTeam:
    key: str
    name: str
    since: datetime


@dataclass(frozen=True)
class Member:
    person_id: int
    email: str
    name: str
    since: datetime
    owner: bool
    teams: tuple[MemberTeam, ...]


def current_members(
    session: Session, workspace_id: int, now: datetime, limit: int = SHOWN
) -> tuple[int, list[Member]]:
    """How many members the workspace has now, and the first ``limit`` by e-mail: three queries."""
    has_access = (
        WorkspaceAccess.workspace_id == workspace_id,
        open_at(WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at, now),
    )
    total = session.scalar(select(func.count()).select_from(WorkspaceAccess).where(*has_access))
    owner = exists(
        select(WorkspaceOwner.person_id).where(
            WorkspaceOwner.workspace_id == workspace_id,
            WorkspaceOwner.person_id == Person.id,
        )
    )
    rows = session.execute(
        select(Person.id, Person.email, Person.name, WorkspaceAccess.granted_at, owner)
        .join(WorkspaceAccess, WorkspaceAccess.person_id == Person.id)
        .where(*has_access)
        .order_by(Person.email)
        .limit(limit)
    ).all()
    teams: dict[int, list[MemberTeam]] = {}
    for person_id, key, name, joined in session.execute(
        select(TeamMembership.person_id, Team.key, Team.name, TeamMembership.joined_at)
        .join(Team, Team.id == TeamMembership.team_id)
        .where(
            Team.workspace_id == workspace_id,
            TeamMembership.person_id.in_([row.id for row in rows]),
            open_at(TeamMembership.joined_at, TeamMembership.left_at, now),
        )
        .order_by(Team.name)
    ):
        teams.setdefault(person_id, []).append(MemberTeam(key, name, joined))
    return total or 0, [
        Member(*row[:4], bool(row[4]), tuple(teams.get(row.id, ()))) for row in rows
    ]
