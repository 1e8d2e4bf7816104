"""Everything about one person, for their page: access, teams, billed months, audit entries.

A fixed number of queries whatever the person's history: one per section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, cast, or_, select
from sqlalchemy.orm import Session

from ..i18n import _
from ..models import (
    AuditEntry,
    Invoice,
    InvoiceHolder,
    Person,
    Team,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
)
from ..textsearch import contains_folded
from .intervals import open_at
from .periods import Month

#: The newest audit entries the page lists; the audit list finds the rest.
AUDIT_SHOWN = 50


@dataclass(frozen=True)
class BilledMonth:
    """One month a person was billed in (user licences) or counted in a billed team."""

    period: str
    workspace_key: str
    workspace_name: str
    invoice_number: str
    variant: str
    teams: tuple[str, ...]


@dataclass(frozen=True)
class PersonOverview:
    person: Person
    access: list[Any]
    memberships: list[Any]
    billed: list[BilledMonth]
    audit: list[Any]


def person_overview(session: Session, person_id: int, zone: Any, now: datetime) -> PersonOverview:
    """The person's access and team memberships over time, the months billed, the audit entries.

    Raises ``LookupError`` for an unknown id.
    """
    person = session.get(Person, person_id)
    if person is None:
        raise LookupError(_("No person with the id %(id)s.", id=person_id))
    access = session.execute(
        select(
            Workspace.key,
            Workspace.name,
            WorkspaceAccess.granted_at,
            WorkspaceAccess.revoked_at,
            open_at(WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at, now).label("now"),
        )
        .join(Workspace, Workspace.id == WorkspaceAccess.workspace_id)
        .where(WorkspaceAccess.person_id == person_id)
        .order_by(Workspace.key, WorkspaceAccess.granted_at)
    ).all()
    memberships = session.execute(
        select(
            Workspace.key.label("workspace_key"),
            Team.id.label("team_id"),
            Team.key.label("team_key"),
            Team.name.label("team_name"),
            TeamMembership.joined_at,
            TeamMembership.left_at,
            open_at(TeamMembership.joined_at, TeamMembership.left_at, now).label("now"),
        )
        .join(Team, Team.id == TeamMembership.team_id)
        .join(Workspace, Workspace.id == Team.workspace_id)
        .where(TeamMembership.person_id == person_id)
        .order_by(Workspace.key, Team.name, TeamMembership.joined_at)
    ).all()
    return PersonOverview(
        person=person,
        access=list(access),
        memberships=list(memberships),
        billed=_billed(session, person_id, memberships, zone),
        audit=mentioning(session, person.email, AUDIT_SHOWN),
    )


def _billed(
    session: Session, person_id: int, memberships: Sequence[Any], zone: Any
) -> list[BilledMonth]:
    """The stored licence holders of current invoices (not credited) that name the person or
    a team of theirs.

    A team-licence invoice bills teams: it counts for the person when they
    were in the team for some positive time within the invoice's month.
    """
    team_ids = {row.team_id for row in memberships}
    rows = session.execute(
        select(
            Invoice.period,
            Invoice.workspace_key,
            Invoice.workspace_name,
            Invoice.number,
            Invoice.variant,
            InvoiceHolder.team_id,
            InvoiceHolder.team_name,
            InvoiceHolder.person_id,
        )
        .join(Invoice, Invoice.id == InvoiceHolder.invoice_id)
        .where(
            Invoice.kind == "invoice",
            Invoice.credited_by_id.is_(None),
            or_(
                InvoiceHolder.person_id == person_id,
                and_(InvoiceHolder.email.is_(None), InvoiceHolder.team_id.in_(team_ids)),
            ),
        )
        .order_by(Invoice.period.desc(), Invoice.workspace_key, InvoiceHolder.team_name)
    ).all()
    spans: dict[int, list[tuple[datetime, datetime | None]]] = {}
    for row in memberships:
        spans.setdefault(row.team_id, []).append((row.joined_at, row.left_at))
    billed: dict[str, tuple[Any, list[str]]] = {}
    for row in rows:
        if row.person_id != person_id and not _in_team_during(
            spans.get(row.team_id, []), Month.parse(row.period).bounds(zone)
        ):
            continue
        billed.setdefault(row.number, (row, []))[1].append(row.team_name)
    return [
        BilledMonth(
            row.period, row.workspace_key, row.workspace_name, row.number, row.variant, tuple(teams)
        )
        for row, teams in billed.values()
    ]


def _in_team_during(
    spans: list[tuple[datetime, datetime | None]], bounds: tuple[datetime, datetime]
) -> bool:
    start, end = bounds
    return any(max(joined, start) < min(left or end, end) for joined, left in spans)


def mentions(text: str) -> Any:
    """Audit entries whose target, detail, before or after contain ``text``, in any case.

    A purge's one entry lists every removed person's e-mail in ``before``:
    this is how a person's removal is found.
    """
    columns = (AuditEntry.target, AuditEntry.detail, AuditEntry.before, AuditEntry.after)
    return or_(*(contains_folded(cast(column, Text), text.strip()) for column in columns))


def mentioning(session: Session, text: str, limit: int) -> list[Any]:
    """The newest audit entries that mention ``text`` (without their values: they can be huge)."""
    return list(
        session.execute(
            select(
                AuditEntry.id,
                AuditEntry.at,
                AuditEntry.actor,
                AuditEntry.action,
                AuditEntry.target,
                AuditEntry.detail,
            )
            .where(mentions(text))
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(limit)
        )
    )
