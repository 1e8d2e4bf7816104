"""What the admin and ``flask billing mail-status`` show of the outbox: every delivery.

Reads only: each mail with its state in words (``waiting for PDF``,
``e-invoice invalid``), and an invoice's latest delivery at a glance, in a
fixed number of queries whatever the number of mails.  The words are the
reader's: German on a German page, English on the command line; the stored
status (``queued``, ``sending``, ``sent``, ``failed``) and the JSON of
``mail-status --json`` keep the English value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ..i18n import _
from ..models import PENDING_STATUSES, Invoice, OutboxMail, Workspace
from .common import chunked


def status_label(status: str) -> str:
    """A stored mail status (``queued``) in the reader's words: ``eingereiht`` on a German page."""
    labels = {
        "queued": _("queued"),
        "sending": _("sending"),
        "sent": _("sent"),
        "failed": _("failed"),
    }
    return labels.get(status, status)


@dataclass(frozen=True)
class Delivery:
    """One queued, sent or failed mail, as the admin and ``mail-status`` show it."""

    id: int
    kind: str
    invoice_number: str | None
    workspace_key: str
    recipient: str | None
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    queued_at: datetime
    queued_by: str
    sent_at: datetime | None
    message_key: str
    waiting_for_pdf: bool
    #: The rules the invoice's e-invoice broke: it is held, neither mailed nor downloadable.
    einvoice_failures: tuple[Mapping[str, str], ...] = ()

    @property
    def einvoice_invalid(self) -> bool:
        return bool(self.einvoice_failures)

    @property
    def problem(self) -> str | None:
        """The last error, or why the mail is held: the broken e-invoice rules with their ids."""
        if self.einvoice_invalid and self.status == "queued":
            rules = "; ".join(f"{f['rule']}: {f['message']}" for f in self.einvoice_failures)
            return _("e-invoice failed validation, not sent: %(rules)s", rules=rules)
        return self.last_error

    @property
    def pending(self) -> bool:
        """Still on its way (queued or being sent): the invoice cannot be resent yet."""
        return self.status in PENDING_STATUSES

    @property
    def state(self) -> str:
        """The status in the reader's words: ``waiting for PDF`` for a queued invoice mail
        without one, ``e-invoice invalid`` when its e-invoice failed validation."""
        if self.waiting_for_pdf and self.einvoice_invalid:
            return _("e-invoice invalid")
        return _("waiting for PDF") if self.waiting_for_pdf else status_label(self.status)

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "kind": self.kind,
            "invoice": self.invoice_number,
            "workspace": self.workspace_key,
            "recipient": self.recipient,
            "status": self.status,
            "waiting_for_pdf": self.waiting_for_pdf,
            "einvoice_failures": [dict(f) for f in self.einvoice_failures],
            "attempts": self.attempts,
            "last_error": self.last_error,
            "next_attempt_at": iso(self.next_attempt_at) if self.status == "queued" else None,
            "queued_at": iso(self.queued_at),
            "queued_by": self.queued_by,
            "sent_at": iso(self.sent_at),
            "message_key": self.message_key,
        }


@dataclass(frozen=True)
class DeliveryStatus:
    """An invoice's mail at a glance: its latest delivery and how many there were."""

    latest: Delivery
    deliveries: int

    @property
    def status(self) -> str:
        return self.latest.state

    @property
    def attempts(self) -> int:
        return self.latest.attempts

    @property
    def last_error(self) -> str | None:
        return self.latest.last_error


def _delivery_query() -> Any:
    waiting = and_(
        OutboxMail.status == "queued",
        OutboxMail.invoice_id.is_not(None),
        Invoice.pdf_sha256.is_(None),
    )
    return (
        select(
            OutboxMail.id,
            OutboxMail.kind,
            Invoice.number.label("invoice_number"),
            Workspace.key.label("workspace_key"),
            OutboxMail.recipient,
            OutboxMail.status,
            OutboxMail.attempts,
            OutboxMail.last_error,
            OutboxMail.next_attempt_at,
            OutboxMail.queued_at,
            OutboxMail.queued_by,
            OutboxMail.sent_at,
            OutboxMail.message_key,
            case((waiting, True), else_=False).label("waiting_for_pdf"),
            Invoice.einvoice_status,
            Invoice.einvoice_failures,
        )
        .join(Workspace, Workspace.id == OutboxMail.workspace_id)
        .outerjoin(Invoice, Invoice.id == OutboxMail.invoice_id)
    )


def _delivery(row: Any) -> Delivery:
    """A row of :func:`_delivery_query` (extra columns, if any, left out) as a :class:`Delivery`."""
    fields = {
        name: row._mapping[name] for name in Delivery.__dataclass_fields__
        if name != "einvoice_failures"
    }
    failures = tuple(row.einvoice_failures or ()) if row.einvoice_status == "invalid" else ()
    return Delivery(
        **{**fields, "waiting_for_pdf": bool(row.waiting_for_pdf)}, einvoice_failures=failures
    )


def deliveries(
    session: Session,
    *,
    invoice_number: str | None = None,
    workspace_key: str | None = None,
    status: str | None = None,
) -> list[Delivery]:
    """Every mail (invoices and notices), oldest first, optionally filtered: one query."""
    query = _delivery_query().order_by(OutboxMail.id)
    if invoice_number is not None:
        query = query.where(Invoice.number == invoice_number)
    if workspace_key is not None:
        query = query.where(Workspace.key == workspace_key)
    if status is not None:
        query = query.where(OutboxMail.status == status)
    return [_delivery(row) for row in session.execute(query)]


def delivery_status(session: Session, numbers: Iterable[str]) -> dict[str, DeliveryStatus]:
    """The mail status of each of these invoices, by number; one query per 5,000 numbers.

    Invoices that were never queued for mail (downloaded ones) are absent.
    """
    statuses: dict[str, DeliveryStatus] = {}
    for chunk in chunked(dict.fromkeys(numbers)):
        per_invoice = (
            select(
                OutboxMail.invoice_id,
                func.max(OutboxMail.id).label("latest_id"),
                func.count().label("deliveries"),
            )
            .join(Invoice, Invoice.id == OutboxMail.invoice_id)
            .where(Invoice.number.in_(chunk))
            .group_by(OutboxMail.invoice_id)
            .subquery()
        )
        query = _delivery_query().add_columns(per_invoice.c.deliveries)
        query = query.join(per_invoice, per_invoice.c.latest_id == OutboxMail.id)
        for row in session.execute(query):
            latest = _delivery(row)
            statuses[row.invoice_number] = DeliveryStatus(latest, row.deliveries)
    return statuses
