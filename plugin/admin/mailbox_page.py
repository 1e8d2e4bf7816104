"""Changing the invoice mailbox from the back-office: one workspace or many at once.

The workspace page's "Change…" link, the list's bulk action (ticked rows)
and the list's "all matching" link all land on one form.  It names the
workspaces and their current mailboxes, asks for the address and hands it,
with the workspaces, to :func:`plugin.services.mailbox.change_mailboxes`,
the service behind ``flask billing set-mailbox`` too.  A refused address is
shown on the form again with the reason; nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import flash
from flask_wtf import FlaskForm
from sqlalchemy import Row, select
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from ..extension import billing
from ..i18n import _, _l
from ..jobs import try_now
from ..models import Workspace
from ..services.mailbox import MailboxChange, MailboxError, change_mailboxes
from ..types import utcnow

#: How many of the chosen workspaces the form lists by name.
SHOWN = 50


class MailboxForm(FlaskForm):
    # Generous: the service says what is wrong with an over-long address.
    address = StringField(_l("New invoice mailbox"), [DataRequired(), Length(max=1000)])


def targets(workspace_ids: Sequence[int]) -> Sequence[Row[int, str, str, str | None]]:
    """The chosen workspaces with their current mailbox, by key: one query."""
    return (
        billing()
        .session.execute(
            select(Workspace.id, Workspace.key, Workspace.name, Workspace.invoice_mailbox)
            .where(Workspace.id.in_(workspace_ids))
            .order_by(Workspace.key)
        )
        .all()
    )


def apply(workspace_ids: Sequence[int], address: str) -> list[MailboxChange] | None:
    """Change the mailbox and commit; on a refusal flash the reason and return ``None``."""
    ext = billing()
    try:
        changes = change_mailboxes(
            ext.session, workspace_ids, address, actor=ext.actor(), now=utcnow()
        )
    except MailboxError as exc:
        ext.session.rollback()
        flash(_("Nothing was changed: %(reason)s.", reason=exc), "error")
        return None
    ext.session.commit()
    try_now(mails=[key for change in changes for key in change.notices])
    changed = [change for change in changes if change.changed]
    unchanged = len(changes) - len(changed)
    if len(changes) == 1 and changed:
        change = changed[0]
        flash(
            _(
                "Invoice mailbox of %(key)s: %(old)s → %(new)s. A notice goes to both addresses;"
                " invoices already on their way keep theirs.",
                key=change.workspace_key,
                old=change.old or _("(none)"),
                new=change.new,
            ),
            "success",
        )
    elif changed:
        flash(
            _(
                "Invoice mailbox set to %(new)s for %(changed)d workspace(s); %(unchanged)d"
                " already had it. A notice goes to each old and the new address.",
                new=changed[0].new,
                changed=len(changed),
                unchanged=unchanged,
            ),
            "success",
        )
    else:
        flash(
            _(
                "Every chosen workspace already has %(new)s: nothing changed.",
                new=changes[0].new,
            ),
            "info",
        )
    return changes
