"""Licences billed per month over a stretch of months (the workspace page's chart)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ..models import Workspace
from ..rules import PricingRules
from .licences import count_licences
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
    """(month, licences billed) for the last ``count`` months; the current one so far."""
    variant = rules.variant_of(workspace)[0]
    history = []
    for month in recent_months(now, rules, count):
        start, end = month.bounds(rules.zoneinfo)
        if start > now:
            break
        teams, users = count_licences(session, start, min(end, now), [workspace.id])
        history.append(
            (month, (teams if variant == "team_licences" else users).get(workspace.id, 0))
        )
    return history
