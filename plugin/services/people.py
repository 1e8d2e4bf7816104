"""People: change a person's name and e-mail address.

A person is one row whatever the number of workspaces they are in, so a
change shows everywhere at once; invoices and the exports of invoiced
months keep what they showed at issue.  E-mail addresses are unique
case-insensitively: they are stored normalised and lower-cased
(:func:`~.management.validate_email`, the import's normalisation), and a
clash is refused with a message naming the address.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..i18n import _
from ..models import Person
from . import audit
from .errors import Conflict
from .management import Change, find_person, rename, validate_email, validate_person_name

RENAME_ACTION = "rename_person"
CHANGE_EMAIL_ACTION = "change_email"


def rename_person(session: Session, *, email: str, name: str, actor: str) -> Change:
    """Change the name of the person with ``email`` (an empty name is allowed)."""
    person = find_person(session, email)
    return rename(
        session,
        Person,
        row_id=person.id,
        old=person.name,
        new=validate_person_name(name),
        action=RENAME_ACTION,
        target=person.email,
        actor=actor,
    )


def change_email(session: Session, *, email: str, new_email: str, actor: str) -> Change:
    """Give the person with ``email`` the address ``new_email``.

    Refuses an address somebody else has, in any spelling of upper and lower
    case (field ``new_email``).  A concurrent change to the same address is
    caught by the unique index, with the same message (the caller rolls back).
    """
    person = find_person(session, email)
    address = validate_email(new_email, field="new_email")
    if address == person.email:
        return Change(
            CHANGE_EMAIL_ACTION,
            person.email,
            False,
            _("%(address)s already has that address", address=person.email),
        )
    clash = _("%(address)s is already the e-mail address of somebody else", address=address)
    if session.scalar(select(Person.id).where(Person.email == address)) is not None:
        raise Conflict(clash, field="new_email")
    before = person.email
    try:
        session.execute(update(Person).where(Person.id == person.id).values(email=address))
    except IntegrityError:
        raise Conflict(clash, field="new_email") from None
    audit.record(
        session,
        actor,
        CHANGE_EMAIL_ACTION,
        target=address,
        before={"email": before},
        after={"email": address},
    )
    return Change(
        CHANGE_EMAIL_ACTION,
        address,
        True,
        _("Changed %(before)s to %(after)s", before=before, after=address),
    )
