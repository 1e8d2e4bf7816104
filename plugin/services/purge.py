"""Removing inactive workspace members: a preview, then a race-safe, set-based removal.

An *inactive member* (docs/design.md, the billing rules) has workspace access now but is, right
now, in no active team of the workspace.  Owners are never removed.  The
removal closes the person's open access interval at ``now`` and ends their
open memberships (which can only be in archived teams) at ``now``: history
is closed, never rewritten, so every past month still bills and exports the
same people.

Between the preview a person looks at and the confirmation, somebody may
join an active team.  So the removal does not trust the preview: its UPDATE
re-checks inactivity in its own WHERE clause, when it runs, and removes only
people the preview showed (``expected``).  Whoever is no longer inactive is
kept and reported.  On PostgreSQL the removal also locks the workspace row
first, so a writer that takes the same lock before changing memberships is
serialised with it, and each statement after the lock sees what that writer
committed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVarTuple

from sqlalchemy import (
    ColumnElement,
    Result,
    Row,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..i18n import _
from ..models import Person, Team, TeamMembership, Workspace, WorkspaceAccess, WorkspaceOwner
from ..types import Expression
from . import audit
from .common import among
from .intervals import open_at, team_active_at

#: The audit action of a purge (one entry per purge, every removed person in it).
AUDIT_ACTION = "purge_inactive"
#: Rows fetched at a time from the purge's statements (see :func:`_batched`).
BATCH = 250

_Ts = TypeVarTuple("_Ts")


class UnknownWorkspaceId(LookupError):
    def __init__(self, workspace_id: int) -> None:
        self.workspace_id = workspace_id
        super().__init__(f"no workspace with the id {workspace_id}")


class InactiveMember(NamedTuple):
    """Somebody the purge removes; ``archived_teams`` are the memberships it ends.

    A named tuple rather than a frozen dataclass: a purge builds one per
    removed person (110,000 in the benchmark), and a frozen dataclass costs
    about three times as much to create.
    """

    person_id: int
    email: str
    name: str
    archived_teams: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeptMember:
    """Somebody the purge keeps, and why: owner, or member of active teams."""

    person_id: int
    email: str
    name: str
    owner: bool
    active_teams: tuple[str, ...]

    @property
    def reason(self) -> str:
        reasons = [_("workspace owner")] if self.owner else []
        if self.active_teams:
            reasons.append(_("in active team(s) %(teams)s", teams=", ".join(self.active_teams)))
        return "; ".join(reasons)


@dataclass(frozen=True)
class PurgePreview:
    """Who would lose access at ``at`` and who is kept, by e-mail: the admin's preview page."""

    workspace_id: int
    workspace_key: str
    at: datetime
    removed: tuple[InactiveMember, ...]
    kept: tuple[KeptMember, ...]

    @property
    def expected(self) -> set[int]:
        """The person ids to confirm: pass them to :func:`purge_inactive` as ``expected``."""
        return {member.person_id for member in self.removed}


@dataclass(frozen=True)
class PurgeResult:
    """Who lost access, and who was expected to but is no longer inactive (kept)."""

    workspace_id: int
    workspace_key: str
    at: datetime
    removed: tuple[InactiveMember, ...]
    kept_since_preview: tuple[InactiveMember, ...]
    members_left: int


# What "inactive" means, as SQL ---------------------------------------------


def _has_access(workspace_id: int, now: datetime) -> ColumnElement[bool]:
    """The ``WorkspaceAccess`` row is this workspace's and open at ``now``."""
    return (WorkspaceAccess.workspace_id == workspace_id) & open_at(
        WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at, now
    )


def _is_owner(workspace_id: int, person_id: Expression[int]) -> ColumnElement[bool]:
    return exists().where(
        WorkspaceOwner.workspace_id == workspace_id, WorkspaceOwner.person_id == person_id
    )


def _in_active_team(
    workspace_id: int, person_id: Expression[int], now: datetime
) -> ColumnElement[bool]:
    return exists(
        select(TeamMembership.id)
        .join(Team, Team.id == TeamMembership.team_id)
        .where(
            TeamMembership.person_id == person_id,
            Team.workspace_id == workspace_id,
            open_at(TeamMembership.joined_at, TeamMembership.left_at, now),
            team_active_at(now),
        )
    )


def inactive_access(workspace_id: int, now: datetime) -> ColumnElement[bool]:
    """The ``WorkspaceAccess`` row belongs to an inactive member at ``now``.

    Evaluated by the database when the statement runs, which is what makes
    the removal safe against changes made after the preview.
    """
    person = WorkspaceAccess.person_id
    return (
        _has_access(workspace_id, now)
        & ~_is_owner(workspace_id, person)
        & ~_in_active_team(workspace_id, person, now)
    )


# Preview -------------------------------------------------------------------


def preview_purge(session: Session, workspace_id: int, now: datetime) -> PurgePreview:
    """Every current member of the workspace, split into removed and kept (two queries)."""
    workspace_key = _workspace_key(session, workspace_id)
    members = session.execute(
        select(
            Person.id,
            Person.email,
            Person.name,
            _is_owner(workspace_id, Person.id).label("owner"),
        )
        .join(WorkspaceAccess, WorkspaceAccess.person_id == Person.id)
        .where(_has_access(workspace_id, now))
        .distinct()
        .order_by(Person.email)
    ).all()
    active, archived = _open_memberships(session, workspace_id, now)
    removed: list[InactiveMember] = []
    kept: list[KeptMember] = []
    for person_id, email, name, owner in members:
        if owner or active[person_id]:
            kept.append(KeptMember(person_id, email, name, bool(owner), active[person_id]))
        else:
            removed.append(InactiveMember(person_id, email, name, archived[person_id]))
    return PurgePreview(workspace_id, workspace_key, now, tuple(removed), tuple(kept))


def _open_memberships(
    session: Session, workspace_id: int, now: datetime
) -> tuple[defaultdict[int, tuple[str, ...]], defaultdict[int, tuple[str, ...]]]:
    """Team keys of the members' open memberships at ``now``: (in active, in other teams)."""
    members = select(WorkspaceAccess.person_id).where(_has_access(workspace_id, now))
    rows = session.execute(
        select(TeamMembership.person_id, Team.key, team_active_at(now).label("active"))
        .join(Team, Team.id == TeamMembership.team_id)
        .where(
            Team.workspace_id == workspace_id,
            open_at(TeamMembership.joined_at, TeamMembership.left_at, now),
            TeamMembership.person_id.in_(members),
        )
        .distinct()
        .order_by(Team.key)
    )
    active: defaultdict[int, tuple[str, ...]] = defaultdict(tuple)
    other: defaultdict[int, tuple[str, ...]] = defaultdict(tuple)
    for person_id, team_key, is_active in rows:
        target = active if is_active else other
        target[person_id] += (team_key,)
    return active, other


# Removal -------------------------------------------------------------------


def purge_inactive(
    session: Session,
    workspace_id: int,
    *,
    now: datetime,
    actor: str,
    expected: set[int] | None = None,
) -> PurgeResult:
    """Remove the workspace's inactive members at ``now``; nothing is committed.

    With ``expected`` (the person ids the preview showed), only those may be
    removed, and only if they are still inactive when the statement runs;
    the others are returned as ``kept_since_preview``.  Without it, every
    member inactive at execution time is removed.  One UPDATE revokes the
    access, one ends the memberships, one SELECT reads the people and one
    INSERT writes the audit entry (every removed person, with before and
    after), whatever their number.  What the UPDATEs changed comes back from
    their RETURNING clauses: nothing they wrote is read again.
    """
    workspace_key = _lock_workspace(session, workspace_id)
    removed_ids = _revoke_access(session, workspace_id, now, expected)
    left_teams = _end_memberships(session, workspace_id, removed_ids, now)
    skipped_ids = set() if expected is None else set(expected) - removed_ids
    removed: list[InactiveMember] = []
    kept: list[InactiveMember] = []
    # One pass over the people: each is either removed or skipped (``_people`` reads no others).
    for person_id, email, name in _people(session, removed_ids | skipped_ids):
        if person_id in removed_ids:
            removed.append(InactiveMember(person_id, email, name, left_teams.get(person_id, ())))
        else:
            kept.append(InactiveMember(person_id, email, name))
    members_left = session.scalar(
        select(func.count()).select_from(WorkspaceAccess).where(_has_access(workspace_id, now))
    )
    result = PurgeResult(
        workspace_id, workspace_key, now, tuple(removed), tuple(kept), members_left or 0
    )
    _record(session, result, actor)
    return result


def _workspace_key(session: Session, workspace_id: int, *, lock: bool = False) -> str:
    query = select(Workspace.key).where(Workspace.id == workspace_id)
    key = session.scalar(query.with_for_update() if lock else query)
    if key is None:
        raise UnknownWorkspaceId(workspace_id)
    return key


def _lock_workspace(session: Session, workspace_id: int) -> str:
    """Lock the workspace row: one purge of a workspace at a time.

    PostgreSQL only; SQLite serialises writers anyway.
    """
    return _workspace_key(session, workspace_id, lock=True)


def _revoke_access(
    session: Session, workspace_id: int, now: datetime, expected: set[int] | None
) -> set[int]:
    """Close the open access of the members inactive right now; return their person ids.

    Core, not the ORM: the RETURNING rows are plain ids, 110,000 of them in
    the benchmark, and need no ORM processing.
    """
    only = [] if expected is None else [among(session, WorkspaceAccess.person_id, expected)]
    rows = session.connection().execute(
        update(WorkspaceAccess)
        .where(inactive_access(workspace_id, now), *only)
        .values(revoked_at=now)
        .returning(WorkspaceAccess.person_id)
    )
    return {person_id for batch in rows.scalars().partitions(BATCH) for person_id in batch}


def _end_memberships(
    session: Session, workspace_id: int, person_ids: set[int], now: datetime
) -> dict[int, tuple[str, ...]]:
    """End the removed people's open memberships in the workspace's inactive teams.

    Memberships of active teams are excluded by the WHERE clause itself, so
    even a join committed after the access was revoked is never ended.
    Returns, per person who left a team, the keys of the teams left, in the
    database's key order (the preview's).  They come from the UPDATE's
    RETURNING and the workspace's team keys, not from reading the ended rows
    back (on PostgreSQL that read went through 200,000 heap fetches of rows
    the UPDATE had just rewritten).
    """
    connection = session.connection()
    keys = connection.execute(
        select(Team.id, Team.key).where(Team.workspace_id == workspace_id).order_by(Team.key)
    ).all()
    position = {key: number for number, (_, key) in enumerate(keys)}  # keys are unique
    alone = {team_id: (key,) for team_id, key in keys}
    inactive_teams = select(Team.id).where(Team.workspace_id == workspace_id, ~team_active_at(now))
    ended = connection.execute(
        update(TeamMembership)
        .where(
            among(session, TeamMembership.person_id, person_ids),
            TeamMembership.team_id.in_(inactive_teams),
            open_at(TeamMembership.joined_at, TeamMembership.left_at, now),
        )
        .values(left_at=now)
        .returning(TeamMembership.person_id, TeamMembership.team_id)
    )
    # People who left the same teams share one tuple of keys (a purge's people have a
    # few combinations of archived teams between them, not one each), so the loop
    # makes no object per person.
    left: dict[int, tuple[str, ...]] = {}
    joined: dict[tuple[tuple[str, ...], int], tuple[str, ...]] = {}
    for person_id, team_id in _batched(ended):
        teams = left.get(person_id)
        if teams is None:
            left[person_id] = alone[team_id]
        else:
            both = joined.get((teams, team_id))
            if both is None:
                both = joined[teams, team_id] = tuple(
                    sorted((*teams, *alone[team_id]), key=position.__getitem__)
                )
            left[person_id] = both
    return left


def _people(session: Session, person_ids: set[int]) -> Iterator[Row[int, str, str]]:
    """Id, e-mail and name of each person id, by e-mail (ids that no longer exist are left out)."""
    return _batched(
        session.connection().execute(
            select(Person.id, Person.email, Person.name)
            .where(among(session, Person.id, person_ids))
            .order_by(Person.email)
        )
    )


def _batched(result: Result[*_Ts]) -> Iterator[Row[*_Ts]]:
    """The rows of ``result``, fetched :data:`BATCH` at a time.

    Not all at once (``.all()``): a purge reads some 10,000 rows three
    times, and rows held together are tracked objects that fill the garbage
    collector's youngest generation (700) many times over; its collections
    then promote them, and the oldest generation's full collection (80 ms
    at the small benchmark scale, every object of the process) followed.
    A batch this small is freed before it fills the generation.  Not one
    row at a time either: that is a fetch call per row.
    """
    for batch in result.partitions(BATCH):
        yield from batch


def _record(session: Session, result: PurgeResult, actor: str) -> None:
    """One audit entry per purge that removed somebody, listing every removed person.

    ``before`` holds the member count and, under ``removed``, each removed
    person's e-mail with the archived teams they were in; ``after`` the
    member count (the removed people have no access and no team any more,
    the same for all, so it is not repeated per person).  One entry, not one
    per person: measured at 110,000 people (``make bench``), an entry per person cost
    1.1 to 1.4 s on PostgreSQL (a row with its foreign-key check and five
    index entries each), a third of the time of the two UPDATEs themselves;
    the single entry costs one ``json.dumps`` of about 4 MB.
    """
    if not result.removed:
        return
    at = result.at.isoformat()
    kept = ", ".join(member.email for member in result.kept_since_preview)
    audit.record(
        session,
        actor,
        AUDIT_ACTION,
        workspace_id=result.workspace_id,
        target=result.workspace_key,
        before={
            "members": result.members_left + len(result.removed),
            "removed": {member.email: member.archived_teams for member in result.removed},
        },
        after={"members": result.members_left},
        detail=f"removed {len(result.removed)} inactive member(s) at {at}"
        + (f"; kept because no longer inactive since the preview: {kept}" if kept else ""),
    )
