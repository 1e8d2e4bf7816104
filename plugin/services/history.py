"""Licences billed per month over a stretch of months (the workspace page's chart)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, func, literal, select, union_all
from sqlalchemy.orm import Session

from ..models import Team, Workspace
from ..rules import PricingRules
from .licences import billing_memberships, instant, team_billed
from .periods import Month


def recent_months(now: datetime, rules: PricingRules, count: int = 12) -> list[Month]:
    """The last ``count`` months, oldest first, ending with the current one."""
    months = [Month.of(now, rules.zoneinfo)]
    while len(months) < count:
        months.append(months[-1].previous())
    return months[::-1]


def licence_history(
    session: Session, rules: PricingRules, workspace: Workspace, now: datetime, count: int = 12
) -> list[tuple[Month, int]]:
    """(month, licences billed) for the last ``count`` months; the current one so far.

    One query for all the months: a table of the months' windows joined to the
    workspace's teams (team licences) or memberships (user licences), counted
    per month, with the same predicates as the invoices.
    """
    variant = rules.variant_of(workspace)[0]
    windows = []
    for month in recent_months(now, rules, count):
        start, end = month.bounds(rules.zoneinfo)
        if start > now:
            break
        windows.append((month, start, min(end, now)))
    months = union_all(
        *(
            select(
                literal(number, Integer).label("number"),
                instant(start).label("window_start"),
                instant(end).label("window_end"),
            )
            for number, (_, start, end) in enumerate(windows)
        )
    ).subquery("months")
    window_start, window_end = months.c.window_start, months.c.window_end
    if variant == "team_licences":
        query = (
            select(months.c.number, func.count(Team.id))
            .join_from(months, Team, team_billed(window_start, window_end))
            .where(Team.workspace_id == workspace.id)
            .group_by(months.c.number)
        )
    else:
        memberships = billing_memberships(window_start, window_end, [workspace.id])
        billed = memberships.add_columns(months.c.number).subquery()
        query = select(billed.c.number, func.count(billed.c.person_id.distinct())).group_by(
            billed.c.number
        )
    counts: dict[int, int] = dict(session.execute(query).all())
    return [(month, counts.get(number, 0)) for number, (month, _, _) in enumerate(windows)]
