"""The public Python API: what a host calls from its own code when its product changes.

"User signed up", "user joined team", "team archived": the host calls the
function here, and the plugin records it as history, exactly as the admin
and the ``flask billing`` commands do (they all call the same services).

- Every argument is a keyword.  Workspaces and teams are named by key,
  people by e-mail address (any upper and lower case).
- No request is needed, only an application context (``with
  app.app_context():``), for the plugin's session and configuration.  Or
  pass ``session=`` explicitly.
- ``actor`` names who made the change in the audit log: the host's user,
  or a name for its own process such as ``"signup-service"``.
- ``at`` is when the change takes effect: now by default.  An instant in the
  past is allowed back to the end of the workspace's last invoiced month,
  never into it (:class:`~plugin.services.closed.ClosedMonth`), and never
  in the future.
- Each call is one transaction: committed when it succeeds, rolled back when
  it is refused.  With ``commit=False`` the change joins the session's open
  transaction instead and the caller commits, or rolls back on an error.
- Every refusal is a :class:`~plugin.services.errors.ManagementError`
  (``NotFound``, ``Conflict``, ``HistoryConflict``, ``ClosedMonth``) whose
  message says what is wrong and whose ``field`` names the argument at fault.
  Nothing is changed.
- Doing what is already done changes nothing: the returned
  :class:`~plugin.services.management.Change` has ``changed`` False.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import TypeVar

from sqlalchemy.orm import Session

from .services import members, people, teams, workspaces
from .services.closed import ClosedMonth
from .services.errors import Conflict, HistoryConflict, ManagementError, NotFound
from .services.management import (
    Change,
    WorkspaceRow,
    find_team,
    lock_workspace,
    validate_instant,
)
from .services.members import Invitation
from .services.teams import TeamChange, TeamRef
from .types import utcnow

__all__ = [
    "Change",
    "ClosedMonth",
    "Conflict",
    "HistoryConflict",
    "Invitation",
    "ManagementError",
    "NotFound",
    "TeamChange",
    "TeamRef",
    "WorkspaceRow",
    "add_owner",
    "add_to_team",
    "archive_team",
    "change_email",
    "create_team",
    "create_workspace",
    "invite",
    "remove_from_team",
    "remove_member",
    "remove_owner",
    "rename_person",
    "rename_team",
    "rename_workspace",
    "unarchive_team",
]

T = TypeVar("T")
#: The services' field names for the owner that :func:`create_workspace` invites.
_OWNER_ARGUMENTS = {"email": "owner_email", "name": "owner_name"}


def _zone() -> tzinfo:
    """The billing time zone the messages write instants in; UTC outside an app."""
    from flask import current_app, has_app_context

    if has_app_context() and "billing" in current_app.extensions:
        zone: tzinfo = current_app.extensions["billing"].zone()
        return zone
    return UTC


def _run(session: Session | None, commit: bool, work: Callable[[Session], T]) -> T:
    """Run one service call as one transaction (or inside the caller's, ``commit=False``)."""
    if session is None:
        from .extension import billing

        session = billing().session
    if not commit:
        return work(session)
    try:
        result = work(session)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


# Workspaces ------------------------------------------------------------------------


def create_workspace(
    *,
    key: str,
    name: str,
    actor: str,
    owner_email: str | None = None,
    owner_name: str = "",
    at: datetime | None = None,
    session: Session | None = None,
    commit: bool = True,
) -> WorkspaceRow:
    """Create a workspace (created now, or at ``at``), optionally with its first owner.

    With ``owner_email`` the person is invited (created if new) and made the
    owner in the same transaction: a host's signup in one call.  A refused
    owner's address or name names the argument ``owner_email`` or ``owner_name``.
    """

    def work(session: Session) -> WorkspaceRow:
        when = at or utcnow()
        row = workspaces.create_workspace(session, key=key, name=name, actor=actor, at=when)
        if owner_email is not None:
            try:
                members.invite(
                    session,
                    workspace=row.key,
                    email=owner_email,
                    name=owner_name,
                    actor=actor,
                    at=when,
                )
                workspaces.add_owner(session, workspace=row.key, email=owner_email, actor=actor)
            except ManagementError as exc:
                exc.field = _OWNER_ARGUMENTS.get(exc.field, exc.field)
                raise
        return row

    return _run(session, commit, work)


def rename_workspace(
    *, workspace: str, name: str, actor: str, session: Session | None = None, commit: bool = True
) -> Change:
    """Give the workspace a new display name (issued invoices keep the old one)."""
    return _run(
        session,
        commit,
        lambda s: workspaces.rename_workspace(s, workspace=workspace, name=name, actor=actor),
    )


def add_owner(
    *, workspace: str, email: str, actor: str, session: Session | None = None, commit: bool = True
) -> Change:
    """Make a member of the workspace an owner (owners are never purged)."""
    return _run(
        session,
        commit,
        lambda s: workspaces.add_owner(s, workspace=workspace, email=email, actor=actor),
    )


def remove_owner(
    *, workspace: str, email: str, actor: str, session: Session | None = None, commit: bool = True
) -> Change:
    """Take away an ownership; the last owner of a workspace cannot be removed."""
    return _run(
        session,
        commit,
        lambda s: workspaces.remove_owner(s, workspace=workspace, email=email, actor=actor),
    )


# Teams ---------------------------------------------------------------------------


def create_team(
    *,
    workspace: str,
    key: str,
    name: str,
    actor: str,
    at: datetime | None = None,
    session: Session | None = None,
    commit: bool = True,
) -> TeamRef:
    """Create a team, active from now (or ``at``) on."""
    return _run(
        session,
        commit,
        lambda s: teams.create_team(
            s, workspace=workspace, key=key, name=name, actor=actor, at=at or utcnow()
        ),
    )


def rename_team(
    *,
    workspace: str,
    team: str,
    name: str,
    actor: str,
    session: Session | None = None,
    commit: bool = True,
) -> Change:
    """Give a team a new display name (exports of invoiced months keep the old one)."""
    return _run(
        session,
        commit,
        lambda s: teams.rename_team(s, workspace=workspace, team=team, name=name, actor=actor),
    )


def _archive(
    service: Callable[..., TeamChange],
    workspace: str,
    team: str,
    actor: str,
    at: datetime | None,
) -> Callable[[Session], TeamChange]:
    def work(session: Session) -> TeamChange:
        row = lock_workspace(session, workspace)
        team_row = find_team(session, row, team)
        when = validate_instant(at or utcnow(), row.closed, f"team {row.key}/{team_row.key}")
        return service(session, [team_row.id], now=when, actor=actor)

    return work


def archive_team(
    *,
    workspace: str,
    team: str,
    actor: str,
    at: datetime | None = None,
    session: Session | None = None,
    commit: bool = True,
) -> TeamChange:
    """Archive a team from now (or ``at``) on: still billed for that month, not after."""
    return _run(session, commit, _archive(teams.archive_teams, workspace, team, actor, at))


def unarchive_team(
    *,
    workspace: str,
    team: str,
    actor: str,
    at: datetime | None = None,
    session: Session | None = None,
    commit: bool = True,
) -> TeamChange:
    """Make an archived team active again from now (or ``at``) on: billed again."""
    return _run(session, commit, _archive(teams.unarchive_teams, workspace, team, actor, at))


# People and access ---------------------------------------------------------------


def invite(
    *,
    workspace: str,
    email: str,
    actor: str,
    name: str = "",
    at: datetime | None = None,
    session: Session | None = None,
    commit: bool = True,
) -> Invitation:
    """Give a person access to the workspace, creating the person if new.

    Access alone bills nothing; being in an active team does (user licences).
    """
    return _run(
        session,
        commit,
        lambda s: members.invite(
            s,
            workspace=workspace,
            email=email,
            name=name,
            actor=actor,
            at=at or utcnow(),
            zone=_zone(),
        ),
    )


def add_to_team(
    *,
    workspace: str,
    team: str,
    email: str,
    actor: str,
    at: datetime | None = None,
    session: Session | None = None,
    commit: bool = True,
) -> Change:
    """Put a member of the workspace into a team: billed (user licences) from that month."""
    return _run(
        session,
        commit,
        lambda s: members.add_to_team(
            s,
            workspace=workspace,
            team=team,
            email=email,
            actor=actor,
            at=at or utcnow(),
            zone=_zone(),
        ),
    )


def remove_from_team(
    *,
    workspace: str,
    team: str,
    email: str,
    actor: str,
    at: datetime | None = None,
    session: Session | None = None,
    commit: bool = True,
) -> Change:
    """Take a person out of a team: still billed for that month, no more from the next."""
    return _run(
        session,
        commit,
        lambda s: members.remove_from_team(
            s,
            workspace=workspace,
            team=team,
            email=email,
            actor=actor,
            at=at or utcnow(),
            zone=_zone(),
        ),
    )


def remove_member(
    *,
    workspace: str,
    email: str,
    actor: str,
    at: datetime | None = None,
    session: Session | None = None,
    commit: bool = True,
) -> Change:
    """End a member's access and every team membership of theirs there (not an owner's)."""
    return _run(
        session,
        commit,
        lambda s: members.remove_member(
            s, workspace=workspace, email=email, actor=actor, at=at or utcnow(), zone=_zone()
        ),
    )


def rename_person(
    *, email: str, name: str, actor: str, session: Session | None = None, commit: bool = True
) -> Change:
    """Change a person's name, everywhere they appear from now on."""
    return _run(
        session, commit, lambda s: people.rename_person(s, email=email, name=name, actor=actor)
    )


def change_email(
    *,
    email: str,
    new_email: str,
    actor: str,
    session: Session | None = None,
    commit: bool = True,
) -> Change:
    """Change a person's e-mail address; refused if somebody else has it, in any case."""
    return _run(
        session,
        commit,
        lambda s: people.change_email(s, email=email, new_email=new_email, actor=actor),
    )
