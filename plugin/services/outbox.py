"""The mail outbox: invoice mails and mailbox notices, queued in the transaction that needs them.

Transactional outbox.  A mail is a row of ``billing_outbox_mail`` written in
the transaction that makes it necessary (the month close, a mailbox change,
a resend), so it exists exactly when its cause was committed, and its
recipient is the mailbox in force at that moment.  Delivery is a separate
step (:mod:`plugin.services.mail_delivery`); what the admin shows of it is in
:mod:`plugin.services.mail_status`.

An invoice mail waits until its invoice has a PDF (PDFs are rendered after
the month close commits).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..i18n import _, untranslated
from ..models import PENDING_STATUSES, Invoice, OutboxMail, Workspace
from ..rules import PricingRules
from ..types import utcnow
from . import audit
from .common import DIALECT_INSERT as _INSERT
from .common import chunked
from .mail_status import status_label

RESEND_ACTION = "resend_invoice"

_TABLE = OutboxMail.__table__


class MailError(ValueError):
    """A mail that cannot be queued (no such invoice or mailbox, already queued): no change."""


def invoice_message_key(number: str, delivery: int = 0) -> str:
    """The key (Message-ID local part) of an invoice's first delivery, or of resend ``delivery``."""
    key = f"invoice-{number}"
    return f"{key}.resend-{delivery}" if delivery else key


def queue_invoice_mails(
    session: Session,
    rules: PricingRules,
    invoices: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    actor: str,
) -> int:
    """Queue a mail for each just-issued invoice that the rules say is e-mailed.

    Called by the month close in its own transaction with the rows it
    inserted (``number``, ``workspace_key``, ``variant``).  Each mail goes to
    the workspace's mailbox as it is now.  A workspace without a mailbox gets
    its mail recorded as ``failed`` with the reason, never silently skipped.
    Returns the number of mails written.
    """
    numbers = [
        row["number"]
        for row in invoices
        if rules.emails_invoices(row["workspace_key"], row["variant"])
    ]
    written = 0
    for chunk in chunked(numbers):
        targets = session.execute(
            select(
                Invoice.id,
                Invoice.number,
                Invoice.workspace_id,
                Workspace.key,
                Workspace.invoice_mailbox,
            )
            .join(Workspace, Workspace.id == Invoice.workspace_id)
            .where(Invoice.number.in_(chunk))
        ).all()
        rows = [_invoice_mail_row(target, now, actor) for target in targets]
        if rows:
            session.execute(_TABLE.insert(), rows)
        written += len(rows)
    return written


def _invoice_mail_row(target: Any, now: datetime, actor: str) -> dict[str, Any]:
    mailbox = target.invoice_mailbox
    return {
        **_new_mail(now, actor),
        "kind": "invoice",
        "workspace_id": target.workspace_id,
        "invoice_id": target.id,
        "recipient": mailbox,
        "message_key": invoice_message_key(target.number),
        "data": {},
        "status": "queued" if mailbox else "failed",
        # Stored, and read in any language: English.
        "last_error": None if mailbox else _no_mailbox(target.key, stored=True),
    }


def _no_mailbox(workspace_key: str, *, stored: bool = False) -> str:
    with untranslated() if stored else nullcontext():
        return _(
            "workspace %(key)s has no invoice mailbox: set one (flask billing set-mailbox "
            "%(key)s ADDRESS), then resend the invoice",
            key=workspace_key,
        )


def _new_mail(now: datetime, actor: str) -> dict[str, Any]:
    return {
        "attempts": 0,
        "next_attempt_at": now,
        "queued_at": now,
        "queued_by": actor,
        "claim_token": None,
        "claimed_until": None,
        "sent_at": None,
    }


@dataclass(frozen=True)
class MailboxNotice:
    """The notice of one workspace's mailbox change: what it says and to whom."""

    workspace_id: int
    #: What the notice says (workspace, old and new address, when).
    facts: Mapping[str, Any]
    recipients: tuple[str, ...]


def queue_mailbox_notices(
    session: Session, notices: Sequence[MailboxNotice], *, now: datetime, actor: str
) -> dict[int, tuple[str, ...]]:
    """Queue every notice to each of its recipients in one statement.

    Returns the message keys by workspace id.
    """
    keys: dict[int, tuple[str, ...]] = {}
    rows = []
    for notice in notices:
        # Short enough that the Message-ID header fits on one line with most domains.
        change = secrets.token_hex(8)
        mails = [
            {
                **_new_mail(now, actor),
                "kind": "mailbox_notice",
                "workspace_id": notice.workspace_id,
                "invoice_id": None,
                "recipient": recipient,
                "message_key": f"mailbox-{change}.{index}",
                "data": dict(notice.facts),
                "status": "queued",
                "last_error": None,
            }
            for index, recipient in enumerate(notice.recipients, start=1)
        ]
        keys[notice.workspace_id] = tuple(mail["message_key"] for mail in mails)
        rows += mails
    if rows:
        session.execute(_TABLE.insert(), rows)
    return keys


@dataclass(frozen=True)
class Resend:
    number: str
    recipient: str
    message_key: str


def resend_invoice(
    session: Session, number: str, *, actor: str, now: datetime | None = None
) -> Resend:
    """Queue a new delivery of invoice ``number`` to the workspace's mailbox as it is now.

    Refused while an earlier delivery is still queued or being sent (a
    double click must not mail twice).  The new delivery has a Message-ID of
    its own that refers to the first one, and an audit entry.  The caller
    commits.
    """
    now = now or utcnow()
    invoice = session.execute(
        select(
            Invoice.id,
            Invoice.number,
            Invoice.workspace_id,
            Invoice.workspace_key,
            Workspace.invoice_mailbox,
        )
        .join(Workspace, Workspace.id == Invoice.workspace_id)
        .where(Invoice.number == number)
    ).one_or_none()
    if invoice is None:
        raise MailError(_("no invoice with the number %(number)r", number=number))
    if not invoice.invoice_mailbox:
        raise MailError(_no_mailbox(invoice.workspace_key))
    earlier = _deliveries_so_far(session, invoice.id)
    if earlier.pending:
        raise MailError(
            _(
                "invoice %(number)s is already on its way (%(state)s): wait until it is sent or "
                "has failed",
                number=number,
                state=status_label(earlier.pending),
            )
        )
    key = invoice_message_key(number, earlier.count)
    row = {
        **_new_mail(now, actor),
        "kind": "invoice",
        "workspace_id": invoice.workspace_id,
        "invoice_id": invoice.id,
        "recipient": invoice.invoice_mailbox,
        "message_key": key,
        "data": {"references": invoice_message_key(number)} if earlier.count else {},
        "status": "queued",
        "last_error": None,
    }
    if not _insert_unless_taken(session, row):
        raise MailError(
            _("invoice %(number)s was resent by somebody else just now", number=number)
        )
    audit.record(
        session,
        actor,
        RESEND_ACTION,
        workspace_id=invoice.workspace_id,
        target=number,
        after={"recipient": invoice.invoice_mailbox, "message_key": key},
        detail=f"delivery {earlier.count + 1} of {number}",
    )
    return Resend(number, invoice.invoice_mailbox, key)


@dataclass(frozen=True)
class _SoFar:
    count: int
    pending: str | None


def _deliveries_so_far(session: Session, invoice_id: int) -> _SoFar:
    row = session.execute(
        select(
            func.count(),
            func.max(case((OutboxMail.status.in_(PENDING_STATUSES), OutboxMail.status))),
        ).where(OutboxMail.invoice_id == invoice_id)
    ).one()
    return _SoFar(row[0], row[1])


def _insert_unless_taken(session: Session, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless its message key exists (a concurrent resend); whether it did."""
    dialect = session.get_bind().dialect.name
    statement = (
        _INSERT[dialect](_TABLE)
        .values(row)
        .on_conflict_do_nothing(index_elements=["message_key"])
        .returning(_TABLE.c.id)
    )
    return session.execute(statement).first() is not None
