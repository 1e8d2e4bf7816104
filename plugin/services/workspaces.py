"""Workspaces: create one, rename it, add and remove its owners.

Each function is one change in the caller's transaction (nothing is
committed), audited with the values before and after.  An owner must be a
member of the workspace (open access), and the last owner cannot be
removed: a workspace that has owners always keeps one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from ..i18n import _, _l
from ..models import Person, Workspace, WorkspaceAccess, WorkspaceOwner
from ..types import utcnow
from . import audit
from .errors import Conflict
from .intervals import open_at
from .management import (
    Change,
    WorkspaceRow,
    find_person,
    lock_workspace,
    rename,
    validate_instant,
    validate_key,
    validate_name,
)

CREATE_ACTION = "create_workspace"
RENAME_ACTION = "rename_workspace"
ADD_OWNER_ACTION = "add_owner"
REMOVE_OWNER_ACTION = "remove_owner"


def create_workspace(
    session: Session, *, key: str, name: str, actor: str, at: datetime
) -> WorkspaceRow:
    """Create workspace ``key`` named ``name``, created at ``at`` (now).

    Its billing variant follows from the creation instant.
    Refuses a bad or taken key (:class:`~.errors.Conflict`, field ``key``).
    """
    key = validate_key(key, what=_l("workspace key"))
    name = validate_name(name, what=_l("workspace name"))
    at = validate_instant(at, None, _("workspace %(key)s", key=key))
    if session.scalar(select(Workspace.id).where(Workspace.key == key)) is not None:
        raise Conflict(_("there is already a workspace with the key %(key)r", key=key), field="key")
    workspace_id = session.execute(
        insert(Workspace).values(key=key, name=name, created_at=at).returning(Workspace.id)
    ).scalar_one()
    audit.record(
        session,
        actor,
        CREATE_ACTION,
        workspace_id=workspace_id,
        target=key,
        before=None,
        after={"key": key, "name": name, "created_at": at.isoformat()},
    )
    return WorkspaceRow(workspace_id, key, name, at, None)


def rename_workspace(session: Session, *, workspace: str, name: str, actor: str) -> Change:
    """Give the workspace a new display name (invoices already issued keep the old one)."""
    row = lock_workspace(session, workspace)
    return rename(
        session,
        Workspace,
        row_id=row.id,
        old=row.name,
        new=validate_name(name, what=_l("workspace name")),
        action=RENAME_ACTION,
        target=row.key,
        actor=actor,
        workspace_id=row.id,
    )


def _owner_emails(session: Session, workspace_id: int) -> list[str]:
    return list(
        session.scalars(
            select(Person.email)
            .join(WorkspaceOwner, WorkspaceOwner.person_id == Person.id)
            .where(WorkspaceOwner.workspace_id == workspace_id)
            .order_by(Person.email)
        )
    )


def add_owner(session: Session, *, workspace: str, email: str, actor: str) -> Change:
    """Make a member of the workspace one of its owners (owners are never purged)."""
    row = lock_workspace(session, workspace)
    person = find_person(session, email)
    target = f"{row.key}/{person.email}"
    owners = _owner_emails(session, row.id)
    if person.email in owners:
        return Change(
            ADD_OWNER_ACTION,
            target,
            False,
            _("%(address)s already owns %(key)s", address=person.email, key=row.key),
        )
    member = session.scalar(
        select(func.count())
        .select_from(WorkspaceAccess)
        .where(
            WorkspaceAccess.workspace_id == row.id,
            WorkspaceAccess.person_id == person.id,
            open_at(WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at, utcnow()),
        )
    )
    if not member:
        raise Conflict(
            _(
                "%(address)s is not a member of %(key)s: invite them first, an owner must be a "
                "member",
                address=person.email,
                key=row.key,
            ),
            field="email",
        )
    session.execute(insert(WorkspaceOwner).values(workspace_id=row.id, person_id=person.id))
    audit.record(
        session,
        actor,
        ADD_OWNER_ACTION,
        workspace_id=row.id,
        target=target,
        before={"owners": owners},
        after={"owners": sorted([*owners, person.email])},
    )
    return Change(
        ADD_OWNER_ACTION,
        target,
        True,
        _("%(address)s now owns %(key)s", address=person.email, key=row.key),
    )


def remove_owner(session: Session, *, workspace: str, email: str, actor: str) -> Change:
    """Take away a person's ownership (they stay a member); never the last owner's."""
    row = lock_workspace(session, workspace)
    person = find_person(session, email)
    target = f"{row.key}/{person.email}"
    owners = _owner_emails(session, row.id)
    if person.email not in owners:
        return Change(
            REMOVE_OWNER_ACTION,
            target,
            False,
            _("%(address)s does not own %(key)s", address=person.email, key=row.key),
        )
    if owners == [person.email]:
        raise Conflict(
            _(
                "%(address)s is the last owner of %(key)s: add another owner first",
                address=person.email,
                key=row.key,
            ),
            field="email",
        )
    session.execute(
        delete(WorkspaceOwner).where(
            WorkspaceOwner.workspace_id == row.id, WorkspaceOwner.person_id == person.id
        )
    )
    audit.record(
        session,
        actor,
        REMOVE_OWNER_ACTION,
        workspace_id=row.id,
        target=target,
        before={"owners": owners},
        after={"owners": [owner for owner in owners if owner != person.email]},
    )
    return Change(
        REMOVE_OWNER_ACTION,
        target,
        True,
        _("%(address)s no longer owns %(key)s", address=person.email, key=row.key),
    )
