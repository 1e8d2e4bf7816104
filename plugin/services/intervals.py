"""Interval predicates shared by the services' and the admin filters' queries.

Who is a member, a holder or an active team at an instant is one definition:
the counts, the purge, the team and member services and the list filters all
build their ``WHERE`` clauses from these.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_, select

from ..models import Team, TeamArchivePeriod
from ..types import Expression
from .licences import instant


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


def open_at(
    start: Expression[datetime], end: Expression[datetime | None], at: datetime
) -> ColumnElement[bool]:
    """The interval ``[start, end)`` (``end`` ``NULL``: still open) holds the instant ``at``."""
    return (start <= instant(at)) & or_(end.is_(None), end > instant(at))
