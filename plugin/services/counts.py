"""Current numbers of a workspace: what "Workspace members" and "General" show.

Four queries whatever the number of workspaces asked about, so a list page
can show them for a whole page of workspaces at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session

from ..models import Team, TeamArchivePeriod, TeamMembership, Workspace, WorkspaceAccess
from ..rules import PricingRules
from .licences import count_team_licences, count_user_licences, instant
from .periods import Month

#: How the licences of each variant are counted.
LICENCE_COUNTS = {"team_licences": count_team_licences, "user_licences": count_user_licences}


@dataclass(frozen=True)
class WorkspaceCounts:
    variant: str
    variant_reason: str
    members: int
    active_members: int
    active_teams: int
    licences_this_month: int


def team_archived_at(at: datetime) -> ColumnElement[bool]:
    """The team (``Team`` in the query) is in an archived period at the instant ``at``."""
    return exists(
        select(TeamArchivePeriod.id).where(
            TeamArchivePeriod.team_id == Team.id,
            TeamArchivePeriod.archived_from <= instant(at),
            or_(
                TeamArchivePeriod.unarchived_at.is_(None),
                TeamArchivePeriod.unarchived_at > instant(at),
            ),
        )
    )


def team_active_at(at: datetime) -> ColumnElement[bool]:
    """The team (``Team`` in the query) exists and is not archived at the instant ``at``."""
    return (Team.created_at <= instant(at)) & ~team_archived_at(at)


def open_at(start: ColumnElement, end: ColumnElement, at: datetime) -> ColumnElement[bool]:
    return (start <= instant(at)) & or_(end.is_(None), end > instant(at))


def current_counts(
    session: Session, rules: PricingRules, workspaces: Iterable[Workspace], now: datetime
) -> dict[int, WorkspaceCounts]:
    """Counts per workspace id, for workspaces already loaded (four queries)."""
    workspaces = list(workspaces)
    ids = [ws.id for ws in workspaces]
    members = dict(
        session.execute(
            select(WorkspaceAccess.workspace_id, func.count())
            .where(
                WorkspaceAccess.workspace_id.in_(ids),
                open_at(WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at, now),
            )
            .group_by(WorkspaceAccess.workspace_id)
        ).all()
    )
    active_teams = dict(
        session.execute(
            select(Team.workspace_id, func.count())
            .where(Team.workspace_id.in_(ids), team_active_at(now))
            .group_by(Team.workspace_id)
        ).all()
    )
    active_members = dict(
        session.execute(
            select(Team.workspace_id, func.count(TeamMembership.person_id.distinct()))
            .join(Team, Team.id == TeamMembership.team_id)
            .where(
                Team.workspace_id.in_(ids),
                team_active_at(now),
                open_at(TeamMembership.joined_at, TeamMembership.left_at, now),
            )
            .group_by(Team.workspace_id)
        ).all()
    )
    variants = {
        ws.id: rules.variant_for(
            ws.key, ws.created_at.astimezone(rules.zoneinfo).date(), ws.contract_variant
        )
        for ws in workspaces
    }
    # Each workspace's licences by its own variant only: the distinct-person
    # count is the costly one, and team-licence workspaces do not need it.
    start, _ = Month.of(now, rules.zoneinfo).bounds(rules.zoneinfo)
    billed_by_variant = {
        variant: count(session, start, now, [i for i, (v, _) in variants.items() if v == variant])
        for variant, count in LICENCE_COUNTS.items()
    }
    result = {}
    for ws in workspaces:
        variant, reason = variants[ws.id]
        billed = billed_by_variant[variant]
        result[ws.id] = WorkspaceCounts(
            variant=variant,
            variant_reason=reason,
            members=members.get(ws.id, 0),
            active_members=active_members.get(ws.id, 0),
            active_teams=active_teams.get(ws.id, 0),
            licences_this_month=billed.get(ws.id, 0),
        )
    return result
