"""Who or what is billed for a period: the billing rules (docs/design.md) as set-based SQL.

A team is active from its creation except during its archived periods.  For
a window ``[start, end)``:

- a team is billed (team licences) when it was active for a positive length
  of time within the window;
- a person is billed (user licences) when, for a positive length of time
  within the window, they belonged to a team of the workspace while that
  team was active; once per workspace, however many teams.

Because a team's archived periods never overlap or touch, "archived for the
whole of ``[lo, hi)``" is a question about a single period, which is what
keeps these queries to one pass with an anti-join.  One query serves one
workspace or all of them at once; nothing here runs a query per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import GenericFunction

from ..models import Team, TeamArchivePeriod, TeamMembership, Workspace
from ..types import UTCDateTime


class greatest(GenericFunction[Any]):
    type = UTCDateTime()
    inherit_cache = True


class least(GenericFunction[Any]):
    type = UTCDateTime()
    inherit_cache = True


@compiles(greatest, "sqlite")
def _sqlite_greatest(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(least, "sqlite")
def _sqlite_least(element: least, compiler: Any, **kw: Any) -> str:
    return f"min({compiler.process(element.clauses, **kw)})"


def instant(value: datetime) -> ColumnElement[datetime]:
    """A bound instant typed like the columns, so SQLite compares like with like."""
    return literal(value, UTCDateTime())


def _bound(value: datetime | ColumnElement[datetime]) -> ColumnElement[datetime]:
    """A window bound: an instant, or a column (one window per row, as in the history)."""
    return instant(value) if isinstance(value, datetime) else value


def active_over(team_id: Any, lo: Any, hi: Any) -> ColumnElement[bool]:
    """``[lo, hi)`` has positive length and the team is not archived for all of it."""
    covering = select(TeamArchivePeriod.id).where(
        TeamArchivePeriod.team_id == team_id,
        TeamArchivePeriod.archived_from <= lo,
        or_(TeamArchivePeriod.unarchived_at.is_(None), TeamArchivePeriod.unarchived_at >= hi),
    )
    return and_(lo < hi, ~exists(covering))


def _workspace_filter(column: Any, workspace_ids: Iterable[int] | None) -> list[Any]:
    return [] if workspace_ids is None else [column.in_(list(workspace_ids))]


def team_billed(start: Any, end: Any) -> ColumnElement[bool]:
    """The team (``Team`` in the query) is billed for ``[start, end)`` (team licences).

    ``start`` and ``end``: instants, or columns of a table of windows joined in.
    """
    return active_over(Team.id, greatest(Team.created_at, _bound(start)), _bound(end))


def billed_teams(
    start: datetime, end: datetime, workspace_ids: Iterable[int] | None = None
) -> Select[int, int]:
    """SELECT (workspace_id, team_id) of the teams billed for ``[start, end)``."""
    return select(Team.workspace_id, Team.id.label("team_id")).where(
        team_billed(start, end), *_workspace_filter(Team.workspace_id, workspace_ids)
    )


def billing_memberships(
    start: Any, end: Any, workspace_ids: Iterable[int] | None = None
) -> Select[int, int, int]:
    """SELECT (workspace_id, person_id, team_id) of the memberships that bill their member.

    ``start`` and ``end``: as in :func:`team_billed`.
    """
    start, end = _bound(start), _bound(end)
    lo = greatest(TeamMembership.joined_at, Team.created_at, start)
    hi = least(func.coalesce(TeamMembership.left_at, end), end)
    return (
        select(Team.workspace_id, TeamMembership.person_id, TeamMembership.team_id)
        .join(Team, Team.id == TeamMembership.team_id)
        .where(
            TeamMembership.joined_at < end,
            or_(TeamMembership.left_at.is_(None), TeamMembership.left_at > start),
            active_over(Team.id, lo, hi),
            *_workspace_filter(Team.workspace_id, workspace_ids),
        )
    )


def count_licences(
    session: Session,
    start: datetime,
    end: datetime,
    workspace_ids: Iterable[int] | None = None,
) -> tuple[dict[int, int], dict[int, int]]:
    """Billed teams and billed people per workspace for ``[start, end)``: two queries.

    Returns ``(teams, users)``, each mapping workspace id to its count; a
    workspace with nothing billed is absent.
    """
    ids = None if workspace_ids is None else list(workspace_ids)
    return count_team_licences(session, start, end, ids), count_user_licences(
        session, start, end, ids
    )


def count_team_licences(
    session: Session, start: datetime, end: datetime, workspace_ids: list[int] | None
) -> dict[int, int]:
    """Billed teams per workspace for ``[start, end)``: one query."""
    teams_q = billed_teams(start, end, workspace_ids).subquery()
    return dict(
        session.execute(
            select(teams_q.c.workspace_id, func.count()).group_by(teams_q.c.workspace_id)
        ).all()
    )


def count_user_licences(
    session: Session, start: datetime, end: datetime, workspace_ids: list[int] | None
) -> dict[int, int]:
    """Billed people per workspace for ``[start, end)``: one query."""
    users_q = billing_memberships(start, end, workspace_ids).subquery()
    return dict(
        session.execute(
            select(users_q.c.workspace_id, func.count(users_q.c.person_id.distinct())).group_by(
                users_q.c.workspace_id
            )
        ).all()
    )


def licensed_workspaces(
    session: Session, start: datetime, end: datetime, workspace_ids: Iterable[int]
) -> tuple[set[int], set[int]]:
    """Of ``workspace_ids``, those with a billed team and those with a billed person for
    ``[start, end)``: one query, each answered by the first row found (``EXISTS``), not
    by counting them all.

    For questions that only ask whether a count is zero (does the workspace have
    something to bill?): a big workspace costs as little as a small one.
    """
    ids = list(workspace_ids)
    if not ids:
        return set(), set()
    teams = exists(billed_teams(start, end).where(Team.workspace_id == Workspace.id))
    people = exists(billing_memberships(start, end).where(Team.workspace_id == Workspace.id))
    rows = session.execute(select(Workspace.id, teams, people).where(Workspace.id.in_(ids))).all()
    return {row[0] for row in rows if row[1]}, {row[0] for row in rows if row[2]}
