"""What the user-management services share: validation, finding and locking rows, results.

One validation function per kind of value (key, name, e-mail, instant),
used by every path: the services call them, so the CLI, the admin and the
host's code (:mod:`plugin.api`) all refuse the same input with the same
message.  Keys, names and e-mail addresses are checked by
:mod:`plugin.validators`, as the import file checks them, so a person
invited by hand and one imported are the same person.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import validators
from ..i18n import _, _l
from ..models import Person, Team, Workspace
from ..types import utcnow
from . import audit
from .closed import Closed, closed_period
from .errors import HistoryConflict, ManagementError, NotFound

NAME_MAX = 200


@dataclass(frozen=True)
class Change:
    """What a service did: ``changed`` is False when everything already was as asked."""

    action: str
    target: str
    changed: bool
    message: str


# Validation ------------------------------------------------------------------


def _checked(check: Callable[[object], str], value: object, field: str, subject: str) -> str:
    """``check(value)``; its refusal as a :class:`ManagementError` about ``subject``."""
    try:
        return check(value)
    except validators.InvalidValue as exc:
        raise ManagementError(f"{subject} {exc}", field=field) from None


def validate_key(
    value: object, *, field: str = "key", what: object = _l("workspace or team key")
) -> str:
    """A workspace or team key: :func:`plugin.validators.key`, as in import files.

    ``what`` names the key in the message (``_l("team key")``: translated when shown).
    """
    subject = _("%(value)r is not a valid %(what)s: it", value=value, what=what)
    return _checked(validators.key, value, field, subject)


def validate_name(value: object, *, field: str = "name", what: object = _l("display name")) -> str:
    """A display name: :func:`plugin.validators.text_line`, trimmed, 1-200 characters."""
    check = partial(validators.text_line, max_length=NAME_MAX)
    return _checked(check, value, field, _("the %(what)s", what=what))


def validate_person_name(value: object, *, field: str = "name") -> str:
    """A person's name, which may be empty (an invitation may not know it yet)."""
    return _checked(validators.person_name, value, field, _("the person's name"))


def validate_email(value: object, *, field: str = "email") -> str:
    """A person's e-mail address in its stored form: :func:`plugin.validators.email_address`."""
    return _checked(validators.email_address, value, field, repr(value))


def validate_instant(at: object, closed: Closed | None, row: str) -> datetime:
    """The instant a change takes effect: timezone-aware, not in the future, and after the
    end of the workspace's last invoiced month (:class:`~.closed.ClosedMonth` otherwise).
    """
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ManagementError(
            _("%(at)r is not a timezone-aware instant (give its UTC offset)", at=at), field="at"
        )
    if at > utcnow():
        raise ManagementError(
            _(
                "%(at)s is in the future: a change takes effect now or in the past",
                at=at.isoformat(),
            ),
            field="at",
        )
    if closed is not None:
        closed.refuse(at, row, at)
    return at


def refuse_later(start: datetime | None, at: datetime, row: str) -> None:
    """Refuse to close or open ``row`` at ``at`` when its recorded history starts after it."""
    if start is not None and start > at:
        raise HistoryConflict(
            _(
                "%(row)s starts at %(start)s, after %(at)s: a change at that instant would "
                "contradict the recorded history",
                row=row,
                start=start.isoformat(),
                at=at.isoformat(),
            ),
            field="at",
        )


def already_open(intervals: Sequence[Any], at: datetime, what: str) -> bool:
    """Whether one of ``(id, start, end)`` intervals is open and began by ``at``.

    Otherwise opening a new interval at ``at`` must not overlap any of them:
    an interval that starts or ends after ``at`` is refused
    (:class:`~.errors.HistoryConflict`).
    """
    if any(end is None and start <= at for _, start, end in intervals):
        return True
    for _id, start, end in intervals:
        refuse_later(start, at, what)
        if end is not None and end > at:
            refuse_later(end, at, _("the end of %(what)s", what=what))
    return False


def rename(
    session: Session,
    model: type[Team] | type[Workspace] | type[Person],
    *,
    row_id: int,
    old: str,
    new: str,
    action: str,
    target: str,
    actor: str,
    workspace_id: int | None = None,
) -> Change:
    """Set the ``name`` of one row, audited; no change (and no entry) when it is the same."""
    if new == old:
        already = _("%(target)s is already called %(name)r", target=target, name=new)
        return Change(action, target, False, already)
    session.execute(update(model).where(model.id == row_id).values(name=new))
    audit.record(
        session,
        actor,
        action,
        workspace_id=workspace_id,
        target=target,
        before={"name": old},
        after={"name": new},
    )
    return Change(
        action,
        target,
        True,
        _("Renamed %(target)s from %(old)r to %(new)r", target=target, old=old, new=new),
    )


# Finding and locking rows --------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceRow:
    id: int
    key: str
    name: str
    created_at: datetime
    closed: Closed | None


def lock_workspace(session: Session, key: object) -> WorkspaceRow:
    """The workspace with this key, its row locked (PostgreSQL) until the transaction ends.

    Every user-management change of a workspace takes this lock first (as the
    purge does), so two supports changing the same workspace at once are
    serialised and each sees what the other committed: adding the same
    person to the same team twice at once gives one membership.
    """
    key = validate_key(key, field="workspace", what=_l("workspace key"))
    row = session.execute(
        select(Workspace.id, Workspace.key, Workspace.name, Workspace.created_at)
        .where(Workspace.key == key)
        .with_for_update()
    ).first()
    if row is None:
        raise NotFound(_("no workspace with the key %(key)r", key=key), field="workspace")
    return WorkspaceRow(*row, closed_period(session, row.id))


def find_team(session: Session, workspace: WorkspaceRow, key: object) -> Team:
    key = validate_key(key, field="team", what=_l("team key"))
    team = session.scalar(select(Team).where(Team.workspace_id == workspace.id, Team.key == key))
    if team is None:
        raise NotFound(
            _("no team %(team)r in workspace %(workspace)r", team=key, workspace=workspace.key),
            field="team",
        )
    return team


def find_person(session: Session, email: object, *, field: str = "email") -> Person:
    address = validate_email(email, field=field)
    person = session.scalar(select(Person).where(Person.email == address))
    if person is None:
        raise NotFound(_("nobody has the e-mail address %(address)s", address=address), field=field)
    return person
