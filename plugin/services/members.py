"""People and access: invite to a workspace, add to a team and take out, remove from the workspace.

Every change opens or closes an interval at ``at`` (now, or an instant in
the past after the end of the workspace's last invoiced month), so earlier
months are recomputed unchanged:

- a member added to a team on the 20th is billed (user licences) for that
  month;
- a member taken out of a team on the 10th is still billed for that month,
  and no more from the next one.

Each function locks the workspace row first (:func:`~.management.lock_workspace`),
so concurrent changes of one workspace are serialised, works in the caller's
transaction (nothing is committed) and writes one audit entry with the
state before and after.  Doing again what is already done changes nothing
and says so (``changed`` is False); everything else that cannot be done is
refused with a :class:`~.errors.ManagementError` before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..i18n import _
from ..instants import format_instant
from ..models import Person, Team, TeamMembership, WorkspaceAccess, WorkspaceOwner
from . import audit
from .errors import Conflict
from .intervals import open_at
from .management import (
    Change,
    WorkspaceRow,
    already_open,
    find_person,
    find_team,
    lock_workspace,
    refuse_later,
    validate_email,
    validate_instant,
    validate_person_name,
)

INVITE_ACTION = "invite_member"
ADD_TO_TEAM_ACTION = "add_to_team"
REMOVE_FROM_TEAM_ACTION = "remove_from_team"
REMOVE_MEMBER_ACTION = "remove_member"


@dataclass(frozen=True)
class Invitation(Change):
    """An invitation's result: the person, and whether they were created by it."""

    person_id: int
    person_created: bool


def _person(session: Session, email: str, name: str) -> tuple[int, bool]:
    """The id of the person with ``email``, created if new; (id, created).

    ``INSERT … ON CONFLICT DO NOTHING``, so two invitations of the same new
    person to different workspaces at once create one person.  An existing
    person without a name gets the one given; a name they have is kept.
    """
    dialect = session.get_bind().dialect.name
    make_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    created = session.scalar(
        make_insert(Person)
        .values(email=email, name=name)
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(Person.id)
    )
    if created is not None:
        return created, True
    person_id, stored = session.execute(
        select(Person.id, Person.name).where(Person.email == email)
    ).one()
    if name and not stored:
        session.execute(update(Person).where(Person.id == person_id).values(name=name))
    return person_id, False


def _access_rows(session: Session, workspace_id: int, person_id: int) -> Sequence[Any]:
    return session.execute(
        select(WorkspaceAccess.id, WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at).where(
            WorkspaceAccess.workspace_id == workspace_id, WorkspaceAccess.person_id == person_id
        )
    ).all()


def invite(
    session: Session,
    *,
    workspace: str,
    email: str,
    name: str = "",
    actor: str,
    at: datetime,
    zone: tzinfo = UTC,
) -> Invitation:
    """Give ``email`` access to the workspace from ``at`` on, creating the person if new.

    Access alone bills nothing: a member is billed (user licences) for the
    months they are in an active team (:func:`add_to_team`).
    """
    row = lock_workspace(session, workspace)
    address = validate_email(email)
    name = validate_person_name(name)
    target = f"{row.key}/{address}"
    at = validate_instant(at, row.closed, _("access of %(address)s", address=address))
    refuse_later(row.created_at, at, _("workspace %(key)s", key=row.key))
    person_id, created = _person(session, address, name)
    access = _access_rows(session, row.id, person_id)
    if already_open(access, at, _("the access of %(address)s", address=address)):
        return Invitation(
            INVITE_ACTION,
            target,
            False,
            _("%(address)s is already a member of %(key)s", address=address, key=row.key),
            person_id,
            created,
        )
    session.execute(
        insert(WorkspaceAccess).values(workspace_id=row.id, person_id=person_id, granted_at=at)
    )
    audit.record(
        session,
        actor,
        INVITE_ACTION,
        workspace_id=row.id,
        target=target,
        before={"member": False},
        after={"member": True, "since": at.isoformat()},
        detail="person created by the invitation" if created else "",
    )
    return Invitation(
        INVITE_ACTION,
        target,
        True,
        _(
            "Invited %(address)s to %(key)s at %(at)s",
            address=address,
            key=row.key,
            at=format_instant(at, zone),
        ),
        person_id,
        created,
    )


def _member_at(session: Session, row: WorkspaceRow, person: Person, at: datetime) -> bool:
    return (
        session.scalar(
            select(WorkspaceAccess.id).where(
                WorkspaceAccess.workspace_id == row.id,
                WorkspaceAccess.person_id == person.id,
                open_at(WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at, at),
            )
        )
        is not None
    )


def _memberships(session: Session, team_id: int, person_id: int) -> Sequence[Any]:
    return session.execute(
        select(TeamMembership.id, TeamMembership.joined_at, TeamMembership.left_at).where(
            TeamMembership.team_id == team_id, TeamMembership.person_id == person_id
        )
    ).all()


def add_to_team(
    session: Session,
    *,
    workspace: str,
    team: str,
    email: str,
    actor: str,
    at: datetime,
    zone: tzinfo = UTC,
) -> Change:
    """Put a member of the workspace into one of its teams from ``at`` on.

    Refuses somebody without access to the workspace at ``at`` (invite them
    first).  Already in the team: nothing changes.
    """
    row = lock_workspace(session, workspace)
    team_row = find_team(session, row, team)
    person = find_person(session, email)
    target = f"{row.key}/{team_row.key}/{person.email}"
    at = validate_instant(at, row.closed, _membership(person.email, team_row.key, the=False))
    refuse_later(team_row.created_at, at, _("team %(team)s", team=f"{row.key}/{team_row.key}"))
    if not _member_at(session, row, person, at):
        raise Conflict(
            _(
                "%(address)s is not a member of workspace %(key)s: invite them first",
                address=person.email,
                key=row.key,
            ),
            field="email",
        )
    memberships = _memberships(session, team_row.id, person.id)
    what = _membership(person.email, team_row.key)
    if already_open(memberships, at, what):
        return Change(
            ADD_TO_TEAM_ACTION,
            target,
            False,
            _("%(address)s is already in %(team)s", address=person.email, team=team_row.key),
        )
    session.execute(
        insert(TeamMembership).values(team_id=team_row.id, person_id=person.id, joined_at=at)
    )
    audit.record(
        session,
        actor,
        ADD_TO_TEAM_ACTION,
        workspace_id=row.id,
        target=target,
        before={"in_team": False},
        after={"in_team": True, "since": at.isoformat()},
    )
    return Change(
        ADD_TO_TEAM_ACTION,
        target,
        True,
        _(
            "Added %(address)s to %(team)s at %(at)s",
            address=person.email,
            team=f"{row.key}/{team_row.key}",
            at=format_instant(at, zone),
        ),
    )


def remove_from_team(
    session: Session,
    *,
    workspace: str,
    team: str,
    email: str,
    actor: str,
    at: datetime,
    zone: tzinfo = UTC,
) -> Change:
    """Take a person out of a team at ``at``; they stay a member of the workspace.

    Still billed for the month of ``at`` (they were in the team in it), no
    more from the next.  Not in the team: nothing changes.
    """
    row = lock_workspace(session, workspace)
    team_row = find_team(session, row, team)
    person = find_person(session, email)
    target = f"{row.key}/{team_row.key}/{person.email}"
    at = validate_instant(at, row.closed, _membership(person.email, team_row.key, the=False))
    open_rows = [m for m in _memberships(session, team_row.id, person.id) if m.left_at is None]
    if not open_rows:
        return Change(
            REMOVE_FROM_TEAM_ACTION,
            target,
            False,
            _("%(address)s is not in %(team)s", address=person.email, team=team_row.key),
        )
    membership_id, joined, _left = open_rows[0]
    refuse_later(joined, at, _membership(person.email, team_row.key))
    session.execute(
        update(TeamMembership).where(TeamMembership.id == membership_id).values(left_at=at)
    )
    audit.record(
        session,
        actor,
        REMOVE_FROM_TEAM_ACTION,
        workspace_id=row.id,
        target=target,
        before={"in_team": True, "since": joined.isoformat()},
        after={"in_team": False, "until": at.isoformat()},
    )
    return Change(
        REMOVE_FROM_TEAM_ACTION,
        target,
        True,
        _(
            "Took %(address)s out of %(team)s at %(at)s",
            address=person.email,
            team=f"{row.key}/{team_row.key}",
            at=format_instant(at, zone),
        ),
    )


def remove_member(
    session: Session, *, workspace: str, email: str, actor: str, at: datetime, zone: tzinfo = UTC
) -> Change:
    """End a member's access to the workspace and every team membership of theirs in it.

    Owners are protected: remove the ownership first.  Not a member:
    nothing changes.  Two UPDATEs whatever the number of teams.
    """
    row = lock_workspace(session, workspace)
    person = find_person(session, email)
    target = f"{row.key}/{person.email}"
    at = validate_instant(at, row.closed, _("access of %(address)s", address=person.email))
    owner = session.scalar(
        select(WorkspaceOwner.person_id).where(
            WorkspaceOwner.workspace_id == row.id, WorkspaceOwner.person_id == person.id
        )
    )
    if owner is not None:
        raise Conflict(
            _(
                "%(address)s is an owner of %(key)s: owners are not removed (remove the "
                "ownership first)",
                address=person.email,
                key=row.key,
            ),
            field="email",
        )
    access = [a for a in _access_rows(session, row.id, person.id) if a.revoked_at is None]
    if not access:
        return Change(
            REMOVE_MEMBER_ACTION,
            target,
            False,
            _("%(address)s is not a member of %(key)s", address=person.email, key=row.key),
        )
    access_id, granted, _revoked = access[0]
    refuse_later(
        granted,
        at,
        _("the access of %(address)s to %(key)s", address=person.email, key=row.key),
    )
    in_workspace = select(Team.id).where(Team.workspace_id == row.id)
    open_teams = session.execute(
        select(Team.key, TeamMembership.joined_at)
        .join(Team, Team.id == TeamMembership.team_id)
        .where(
            TeamMembership.person_id == person.id,
            TeamMembership.team_id.in_(in_workspace),
            TeamMembership.left_at.is_(None),
        )
        .order_by(Team.key)
    ).all()
    for team_key, joined in open_teams:
        refuse_later(joined, at, _membership(person.email, team_key))
    session.execute(
        update(WorkspaceAccess).where(WorkspaceAccess.id == access_id).values(revoked_at=at)
    )
    session.execute(
        update(TeamMembership)
        .where(
            TeamMembership.person_id == person.id,
            TeamMembership.team_id.in_(in_workspace),
            TeamMembership.left_at.is_(None),
        )
        .values(left_at=at)
        .execution_options(synchronize_session=False)
    )
    teams = [team_key for team_key, _ in open_teams]
    audit.record(
        session,
        actor,
        REMOVE_MEMBER_ACTION,
        workspace_id=row.id,
        target=target,
        before={"member": True, "teams": teams},
        after={"member": False, "teams": [], "until": at.isoformat()},
    )
    removed = {"address": person.email, "key": row.key, "at": format_instant(at, zone)}
    return Change(
        REMOVE_MEMBER_ACTION,
        target,
        True,
        _(
            "Removed %(address)s from %(key)s at %(at)s, leaving %(teams)s",
            teams=", ".join(teams),
            **removed,
        )
        if teams
        else _("Removed %(address)s from %(key)s at %(at)s", **removed),
    )


def _membership(address: str, team: str, *, the: bool = True) -> str:
    """The membership named in a refusal: ``the membership of …`` or, first, ``membership of …``."""
    if the:
        return _("the membership of %(address)s in %(team)s", address=address, team=team)
    return _("membership of %(address)s in %(team)s", address=address, team=team)
