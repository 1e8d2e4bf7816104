"""The invoice mailbox of a workspace: one validated address, changed only with notice.

The mailbox is the only recipient that invoice mails are ever sent to (the
SMTP client gets it as the envelope's one recipient, never from a header).
So the stored value must be exactly one plain address: no display name, no
list, no CR/LF or other control character that could smuggle in a header
such as ``Bcc:``.  :func:`validate_mailbox` refuses everything else with a
message that says what is wrong, and stores the normalised ASCII form:

- the domain in its ASCII (IDNA) form, so an internationalised look-alike
  domain shows as ``xn--…`` instead of passing for a familiar one, and the
  mail needs no SMTPUTF8 support from any server on the way;
- non-ASCII local parts are refused for the same reason;
- lower-cased, like every other address the plugin stores.

Redirecting invoices is a classic fraud, so a change (:func:`change_mailbox`)
is recorded in the audit log with the old and new value and queues a notice
to both addresses, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import CursorResult, func, select, tuple_, update
from sqlalchemy.orm import Session

from .. import validators
from ..i18n import _
from ..models import Workspace
from ..types import AnyRow
from . import audit, outbox

CHANGE_ACTION = "change_mailbox"

#: RFC 5321 allows 256 characters for a path including its angle brackets.
MAX_LENGTH = 254

#: An address is shown longer than other values: most of it is needed to tell it apart.
_SHOWN = 80


class MailboxError(ValueError):
    """An address or change that is refused; ``str()`` says why.  Nothing was changed."""


def _shown(value: str) -> str:
    return validators.shown(value, limit=_SHOWN)


def validate_mailbox(value: object) -> str:
    """The normalised form of one invoice mailbox address; :class:`MailboxError` otherwise."""
    if not isinstance(value, str):
        raise MailboxError(_("the invoice mailbox must be an e-mail address"))
    try:
        validators.characters(value)
    except validators.InvalidValue as exc:
        raise MailboxError(f"{_shown(value)} {exc}") from None
    address = value.strip(" ")
    if not address:
        raise MailboxError(_("the invoice mailbox must not be empty"))
    if "," in address or ";" in address:
        raise MailboxError(
            _("%(value)s is a list: the invoice mailbox is one address", value=_shown(address))
        )
    if "<" in address or ">" in address:
        raise MailboxError(
            _(
                "%(value)s has a display name or angle brackets: write only the address, such as "
                "invoices@example.com",
                value=_shown(address),
            )
        )
    if len(address) > MAX_LENGTH:
        raise MailboxError(
            _(
                "%(value)s is %(length)s characters long; an address has at most %(max)s",
                value=_shown(address),
                length=len(address),
                max=MAX_LENGTH,
            )
        )
    try:
        result = validate_email(
            address,
            check_deliverability=False,
            allow_display_name=False,
            allow_smtputf8=False,
            strict=True,
        )
    except EmailNotValidError as exc:
        reason = _("is not a valid e-mail address: %(reason)s", reason=exc)
        raise MailboxError(f"{_shown(address)} {reason}") from None
    normalised = (result.ascii_email or result.normalized).lower()
    if len(normalised) > MAX_LENGTH:
        raise MailboxError(
            _(
                "%(value)s is longer than %(max)s characters in ASCII",
                value=_shown(address),
                max=MAX_LENGTH,
            )
        )
    return normalised


def workspace_id_for(session: Session, key: str) -> int:
    """The id of the workspace with this key; :class:`MailboxError` if there is none."""
    workspace_id = session.scalar(select(Workspace.id).where(Workspace.key == key))
    if workspace_id is None:
        raise MailboxError(_("no workspace with the key %(key)r", key=key))
    return workspace_id


@dataclass(frozen=True)
class MailboxChange:
    workspace_key: str
    old: str | None
    new: str
    #: Message keys of the queued notices (to the old address, if any, then the new one).
    notices: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.old != self.new


def change_mailbox(
    session: Session, workspace_id: int, address: str, *, actor: str, now: datetime
) -> MailboxChange:
    """Make ``address`` the workspace's invoice mailbox, in the caller's transaction.

    The one-workspace case of :func:`change_mailboxes` (the CLI, the workspace
    page).  The caller commits.
    """
    return change_mailboxes(session, [workspace_id], address, actor=actor, now=now)[0]


def change_mailboxes(
    session: Session, workspace_ids: Sequence[int], address: str, *, actor: str, now: datetime
) -> list[MailboxChange]:
    """Make ``address`` the invoice mailbox of each workspace, in the caller's transaction.

    Validates first and changes nothing on a bad address or an unknown
    workspace.  A workspace that already has the address is no change (no
    audit entry, no notice).  The others change in one UPDATE that only
    applies while every mailbox is still the one read here, so two
    accountants changing it at once cannot both notify the same "old"
    address: the second one is refused and tries again.  Each change gets an
    audit entry with the old and new value and a notice to both addresses.
    Invoice mails queued before keep their recipient; the next month close
    uses the new address.  A constant number of statements whatever the
    number of workspaces.  Returns the changes in key order; the caller commits.
    """
    new = validate_mailbox(address)
    wanted = set(workspace_ids)
    if not wanted:
        raise MailboxError(_("no workspace selected"))
    workspaces = session.execute(
        select(Workspace.id, Workspace.key, Workspace.name, Workspace.invoice_mailbox)
        .where(Workspace.id.in_(wanted))
        .order_by(Workspace.key)
    ).all()
    missing = wanted - {workspace.id for workspace in workspaces}
    if missing:
        raise MailboxError(_("no workspace with the id %(id)s", id=min(missing)))
    moving = [workspace for workspace in workspaces if workspace.invoice_mailbox != new]
    if moving:
        _swap(session, moving, new)
        audit.record_many(
            session,
            actor,
            CHANGE_ACTION,
            [
                {
                    "workspace_id": workspace.id,
                    "target": workspace.key,
                    "before": {"invoice_mailbox": workspace.invoice_mailbox},
                    "after": {"invoice_mailbox": new},
                }
                for workspace in moving
            ],
        )
    notices = outbox.queue_mailbox_notices(
        session,
        [
            outbox.MailboxNotice(
                workspace_id=workspace.id,
                facts={
                    "workspace_key": workspace.key,
                    "workspace_name": workspace.name,
                    "old": workspace.invoice_mailbox,
                    "new": new,
                    "changed_at": now.isoformat(),
                },
                recipients=tuple(a for a in (workspace.invoice_mailbox, new) if a),
            )
            for workspace in moving
        ],
        now=now,
        actor=actor,
    )
    return [
        MailboxChange(
            workspace.key, workspace.invoice_mailbox, new, notices.get(workspace.id, ())
        )
        for workspace in workspaces
    ]


def _swap(session: Session, moving: Sequence[AnyRow], new: str) -> None:
    """One UPDATE, applied only if no mailbox changed since it was read."""
    read = [(workspace.id, workspace.invoice_mailbox or "") for workspace in moving]
    result = session.execute(
        update(Workspace)
        .where(tuple_(Workspace.id, func.coalesce(Workspace.invoice_mailbox, "")).in_(read))
        .values(invoice_mailbox=new)
        .execution_options(synchronize_session="fetch")
    )
    if cast("CursorResult[Any]", result).rowcount != len(moving):
        keys = ", ".join(workspace.key for workspace in moving)
        raise MailboxError(
            _(
                "the invoice mailbox of %(keys)s was changed by somebody else meanwhile: look at "
                "it again, then retry",
                keys=keys,
            )
        )
