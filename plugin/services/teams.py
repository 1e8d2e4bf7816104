"""Archiving and unarchiving teams: closing or opening archived periods, set-based.

A team's archived periods ``[archived_from, unarchived_at)`` never overlap or
touch (docs/design.md, the billing rules; :class:`~plugin.models.TeamArchivePeriod`), because the
licence queries rely on "archived for the whole of an interval" being a
question about one row.  So the writes here keep that invariant instead of
blindly adding rows:

- archiving at the very instant the team's last archived period ended
  reopens that period rather than adding one that touches it;
- unarchiving at the very instant the team was archived removes the empty
  period rather than closing it to zero length (it never billed anything
  and never will, so no month changes).

Every change happens at ``now``, never in the past, so no billed month can
change: archiving on the 15th still bills that month and no more from the
next.  Each function changes any number of teams with a fixed number of
statements, reports the teams that were already in the wanted state, and
writes one audit entry per changed team in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from sqlalchemy import ColumnElement, Executable, Select, delete, exists, insert, select, update
from sqlalchemy.orm import Session

from ..i18n import _, _l
from ..instants import format_instant
from ..models import Team, TeamArchivePeriod, Workspace
from . import audit
from .common import chunked
from .errors import Conflict
from .intervals import open_at, team_active_at
from .licences import instant
from .management import (
    Change,
    find_team,
    lock_workspace,
    refuse_later,
    rename,
    validate_instant,
    validate_key,
    validate_name,
)

ARCHIVE_ACTION = "archive_team"
UNARCHIVE_ACTION = "unarchive_team"


class UnknownTeams(LookupError):
    """Some ``(workspace key, team key)`` pairs name nothing; ``str()`` lists them all."""

    def __init__(self, workspaces: Sequence[str], teams: Sequence[tuple[str, str]]) -> None:
        self.workspaces = tuple(workspaces)
        self.teams = tuple(teams)
        problems = [_("no workspace with the key %(key)r", key=key) for key in self.workspaces]
        problems += [
            _("no team %(team)r in workspace %(workspace)r", team=team, workspace=ws)
            for ws, team in self.teams
        ]
        super().__init__("; ".join(problems))


class UnknownTeamIds(LookupError):
    """Team ids (from a form, say) that do not exist: nothing was changed."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = tuple(sorted(ids))
        super().__init__(_("no team with the id(s) %(ids)s", ids=", ".join(map(str, self.ids))))


class LaterHistory(ValueError):
    """Archiving at ``now`` would contradict history already recorded after ``now``.

    A team created after ``now``, or with an archived period that starts after
    it, cannot be archived from ``now`` on without overlapping that history.
    """

    def __init__(self, targets: Iterable[str], now: datetime) -> None:
        self.targets = tuple(sorted(targets))
        super().__init__(
            _(
                "cannot archive %(teams)s at %(at)s: the team's recorded history (creation or an "
                "archived period) starts later",
                teams=", ".join(self.targets),
                at=now.isoformat(),
            )
        )


@dataclass(frozen=True, order=True)
class TeamRef:
    """A team as people name it: ``workspace_key/team_key`` (the audit target)."""

    workspace_key: str
    team_key: str
    id: int
    workspace_id: int

    @property
    def target(self) -> str:
        return f"{self.workspace_key}/{self.team_key}"


@dataclass(frozen=True)
class TeamChange:
    """What an archive or unarchive did: the teams changed and those already as wanted."""

    archived: bool
    at: datetime
    changed: tuple[TeamRef, ...]
    unchanged: tuple[TeamRef, ...]

    def lines(self, zone: tzinfo = UTC) -> list[str]:
        """One line per team, the instant written in ``zone`` (the billing time zone)."""
        verb = "Archived" if self.archived else "Unarchived"
        state = "already archived" if self.archived else "already active (not archived)"
        at = format_instant(self.at, zone)
        lines = [f"{verb} {ref.target} at {at}" for ref in self.changed]
        lines += [f"{ref.target} is {state}: nothing changed" for ref in self.unchanged]
        return lines


# Finding teams -------------------------------------------------------------


def resolve_teams(session: Session, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Team ids of ``(workspace_key, team_key)`` pairs, in one query per 5,000 pairs.

    Raises :class:`UnknownTeams` naming every unknown workspace and team at
    once, so a person fixes all of them in one go.
    """
    wanted = list(dict.fromkeys(pairs))
    known_workspaces: set[str] = set()
    found: dict[tuple[str, str], int] = {}
    for chunk in chunked(wanted):
        team_keys = {team for _, team in chunk}
        rows = session.execute(
            select(Workspace.key, Team.key, Team.id)
            .outerjoin(Team, (Team.workspace_id == Workspace.id) & Team.key.in_(team_keys))
            .where(Workspace.key.in_({ws for ws, _ in chunk}))
        )
        for ws_key, team_key, team_id in rows:
            known_workspaces.add(ws_key)
            if team_id is not None:
                found[(ws_key, team_key)] = team_id
    missing = [pair for pair in wanted if pair not in found]
    if missing:
        raise UnknownTeams(
            sorted({ws for ws, _ in missing} - known_workspaces),
            [(ws, team) for ws, team in missing if ws in known_workspaces],
        )
    return {pair: found[pair] for pair in wanted}


def teams_matching(
    *,
    now: datetime,
    workspace_ids: Iterable[int] | None = None,
    archived: bool | None = None,
) -> Select[int]:
    """SELECT of the ids of the teams matching a list view's filters, at ``now``.

    This is "apply to everything matching the filter": the admin counts it for
    the confirmation and feeds the ids to :func:`archive_teams`.  ``archived``
    is ``True`` for teams archived now, ``False`` for active ones, ``None``
    for both (teams created after ``now`` are neither).
    """
    query = select(Team.id).order_by(Team.id)
    if workspace_ids is not None:
        query = query.where(Team.workspace_id.in_(list(workspace_ids)))
    if archived is True:
        query = query.where(Team.created_at <= instant(now), ~team_active_at(now))
    elif archived is False:
        query = query.where(team_active_at(now))
    return query


def matching_team_ids(
    session: Session,
    *,
    now: datetime,
    workspace_ids: Iterable[int] | None = None,
    archived: bool | None = None,
) -> list[int]:
    """The ids :func:`teams_matching` selects, in id order."""
    query = teams_matching(now=now, workspace_ids=workspace_ids, archived=archived)
    return list(session.scalars(query))


# Archiving -----------------------------------------------------------------


def archive_teams(
    session: Session, team_ids: Iterable[int], *, now: datetime, actor: str
) -> TeamChange:
    """Archive the teams from ``now`` on; teams archived already are left alone.

    Nothing is committed: the archived periods and the audit entries join the
    caller's transaction.  Raises :class:`UnknownTeamIds` or
    :class:`LaterHistory` before writing anything.
    """
    refs = _lock_teams(session, team_ids, now, check_later_history=True)
    reopened: set[int] = set()
    opened: set[int] = set()
    for chunk in chunked(sorted(refs)):
        reopened |= _reopen_period_ending_at(session, chunk, now)
        opened |= _open_periods(session, chunk, now)
    details = dict.fromkeys(opened, f"archived from {now.isoformat()}")
    details |= dict.fromkeys(
        reopened,
        f"archived again at {now.isoformat()}, the instant its last archived period "
        "ended: that period was reopened",
    )
    return _report(session, refs, details, archived=True, now=now, actor=actor)


def unarchive_teams(
    session: Session, team_ids: Iterable[int], *, now: datetime, actor: str
) -> TeamChange:
    """Make the teams active again from ``now`` on; active teams are left alone.

    The archived period that covers ``now`` ends at ``now``; one that began
    at ``now`` exactly is removed, since a zero-length period is not allowed.
    Nothing is committed.  Raises :class:`UnknownTeamIds` before writing.
    """
    refs = _lock_teams(session, team_ids, now, check_later_history=False)
    closed: set[int] = set()
    removed: set[int] = set()
    for chunk in chunked(sorted(refs)):
        closed |= _close_periods(session, chunk, now)
        removed |= _remove_empty_periods(session, chunk, now)
    details = dict.fromkeys(closed, f"unarchived at {now.isoformat()}")
    details |= dict.fromkeys(
        removed,
        f"unarchived at {now.isoformat()}, the instant it was archived: "
        "the empty archived period was removed",
    )
    return _report(session, refs, details, archived=False, now=now, actor=actor)


def _lock_teams(
    session: Session, team_ids: Iterable[int], now: datetime, *, check_later_history: bool
) -> dict[int, TeamRef]:
    """Name the teams and lock their rows (PostgreSQL), refusing unknown ids.

    The row locks, taken in id order, make concurrent archive and unarchive
    requests for the same team wait for each other; each later statement
    then sees what the other committed.
    """
    ids = sorted(set(team_ids))
    later = exists().where(
        TeamArchivePeriod.team_id == Team.id, TeamArchivePeriod.archived_from > instant(now)
    )
    refs: dict[int, TeamRef] = {}
    conflicts: list[str] = []
    for chunk in chunked(ids):
        rows = session.execute(
            select(
                Team.id,
                Team.workspace_id,
                Workspace.key,
                Team.key,
                ((Team.created_at > instant(now)) | later).label("later"),
            )
            .join(Workspace, Workspace.id == Team.workspace_id)
            .where(Team.id.in_(chunk))
            .order_by(Team.id)
            .with_for_update(of=Team)
        )
        for team_id, workspace_id, ws_key, team_key, has_later_history in rows:
            refs[team_id] = TeamRef(ws_key, team_key, team_id, workspace_id)
            if has_later_history:
                conflicts.append(refs[team_id].target)
    if unknown := set(ids) - refs.keys():
        raise UnknownTeamIds(unknown)
    if check_later_history and conflicts:
        raise LaterHistory(conflicts, now)
    return refs


def _returned_team_ids(session: Session, statement: Executable) -> set[int]:
    rows = session.execute(statement, execution_options={"synchronize_session": False})
    return set(rows.scalars())


def _reopen_period_ending_at(session: Session, chunk: Sequence[int], now: datetime) -> set[int]:
    """Reopen the periods that ended exactly at ``now``: archiving there must not touch them."""
    return _returned_team_ids(
        session,
        update(TeamArchivePeriod)
        .where(
            TeamArchivePeriod.team_id.in_(chunk),
            TeamArchivePeriod.unarchived_at == instant(now),
        )
        .values(unarchived_at=None)
        .returning(TeamArchivePeriod.team_id),
    )


def _open_periods(session: Session, chunk: Sequence[int], now: datetime) -> set[int]:
    """One INSERT … SELECT of an open period for each team of ``chunk`` still active at ``now``."""
    active = select(Team.id, instant(now)).where(Team.id.in_(chunk), team_active_at(now))
    return _returned_team_ids(
        session,
        insert(TeamArchivePeriod)
        .from_select(["team_id", "archived_from"], active)
        .returning(TeamArchivePeriod.team_id),
    )


def _covering_now(chunk: Sequence[int], now: datetime) -> ColumnElement[bool]:
    return TeamArchivePeriod.team_id.in_(chunk) & open_at(
        TeamArchivePeriod.archived_from, TeamArchivePeriod.unarchived_at, now
    )


def _close_periods(session: Session, chunk: Sequence[int], now: datetime) -> set[int]:
    """End at ``now`` the archived periods that cover ``now`` and began before it."""
    return _returned_team_ids(
        session,
        update(TeamArchivePeriod)
        .where(_covering_now(chunk, now), TeamArchivePeriod.archived_from < instant(now))
        .values(unarchived_at=instant(now))
        .returning(TeamArchivePeriod.team_id),
    )


def _remove_empty_periods(session: Session, chunk: Sequence[int], now: datetime) -> set[int]:
    """Delete the periods that began at ``now``: closing them would leave zero length."""
    return _returned_team_ids(
        session,
        delete(TeamArchivePeriod)
        .where(_covering_now(chunk, now), TeamArchivePeriod.archived_from == instant(now))
        .returning(TeamArchivePeriod.team_id),
    )


def _report(
    session: Session,
    refs: dict[int, TeamRef],
    details: dict[int, str],
    *,
    archived: bool,
    now: datetime,
    actor: str,
) -> TeamChange:
    """Write one audit entry per changed team and say what changed."""
    changed = sorted(refs[team_id] for team_id in details)
    audit.record_many(
        session,
        actor,
        ARCHIVE_ACTION if archived else UNARCHIVE_ACTION,
        [
            {
                "workspace_id": ref.workspace_id,
                "target": ref.target,
                "before": {"archived": not archived},
                "after": {"archived": archived},
                "detail": details[ref.id],
            }
            for ref in changed
        ],
    )
    unchanged = sorted(ref for team_id, ref in refs.items() if team_id not in details)
    return TeamChange(archived, now, tuple(changed), tuple(unchanged))


# Creating and renaming -------------------------------------------------------

CREATE_ACTION = "create_team"
RENAME_ACTION = "rename_team"


def create_team(
    session: Session, *, workspace: str, key: str, name: str, actor: str, at: datetime
) -> TeamRef:
    """Create team ``key`` in the workspace, active from ``at`` (now) on.

    Team licences bill it from the month of ``at``.  Refuses a bad or taken
    key (field ``key``) and an instant before the workspace's creation or in
    an invoiced month.
    """
    row = lock_workspace(session, workspace)
    key = validate_key(key, what=_l("team key"))
    name = validate_name(name, what=_l("team name"))
    at = validate_instant(at, row.closed, _("team %(team)s", team=f"{row.key}/{key}"))
    refuse_later(row.created_at, at, _("workspace %(key)s", key=row.key))
    taken = select(Team.id).where(Team.workspace_id == row.id, Team.key == key)
    if session.scalar(taken) is not None:
        raise Conflict(
            _(
                "workspace %(workspace)s already has a team with the key %(key)r",
                workspace=row.key,
                key=key,
            ),
            field="key",
        )
    team_id = session.execute(
        insert(Team)
        .values(workspace_id=row.id, key=key, name=name, created_at=at)
        .returning(Team.id)
    ).scalar_one()
    ref = TeamRef(row.key, key, team_id, row.id)
    audit.record(
        session,
        actor,
        CREATE_ACTION,
        workspace_id=row.id,
        target=ref.target,
        before=None,
        after={"key": key, "name": name, "created_at": at.isoformat()},
    )
    return ref


def rename_team(session: Session, *, workspace: str, team: str, name: str, actor: str) -> Change:
    """Give a team a new display name (exports of invoiced months keep the old one)."""
    row = lock_workspace(session, workspace)
    team_row = find_team(session, row, team)
    return rename(
        session,
        Team,
        row_id=team_row.id,
        old=team_row.name,
        new=validate_name(name, what=_l("team name")),
        action=RENAME_ACTION,
        target=f"{row.key}/{team_row.key}",
        actor=actor,
        workspace_id=row.id,
    )
