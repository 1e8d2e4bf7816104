"""Stored invoices as EN 16931 e-invoices: the mapping, and the stored XML and its status.

An invoice issued since billing details exist (``buyer`` is set, migration
0008) gets an e-invoice when its PDF is rendered
(:func:`plugin.services.invoice_pdfs.render_pending`); one issued before keeps
its plain PDF and has no XML.  The XML is built from what the invoice stored
at issue, never from today's customer or seller details.

EN 16931 wants a credit note with positive amounts (type 381): the stored
lines and totals of a credit note are negated, so they are turned round here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..einvoice.document import (
    COMMERCIAL_INVOICE,
    CREDIT_NOTE,
    Address,
    Buyer,
    Contact,
    EInvoice,
    Line,
    Payment,
    Reference,
    Seller,
    Vat,
)
from ..i18n import _
from ..models import Invoice


class XmlNotAvailable(LookupError):
    """No such invoice, no e-invoice for it (issued before e-invoices), or not built yet."""


def is_einvoice(row: Any) -> bool:
    """Whether ``row`` (an invoice or a row of its columns) is issued as an e-invoice."""
    return row.buyer is not None


def issue_date(instant: datetime, tz: tzinfo) -> date:
    """The date of an issue instant in the billing time zone (as the PDF prints it)."""
    return instant.astimezone(tz).date()


def _address(data: Mapping[str, Any]) -> Address:
    return Address(tuple(data.get("address_lines") or ()), data["postcode"], data["city"],
                   data["country"])


def _seller(data: Mapping[str, Any]) -> Seller:
    directors = ", ".join(data.get("managing_directors") or ())
    legal = "; ".join(part for part in (
        " ".join(filter(None, (data.get("register_court"), data.get("register_number")))),
        f"Geschäftsführung / Managing directors: {directors}" if directors else "",
    ) if part)
    contact = data.get("contact") or {}
    return Seller(
        name=data["name"],
        address=_address(data),
        email=data["email"],
        vat_id=data.get("vat_id"),
        tax_number=data.get("tax_number"),
        register_number=data.get("register_number"),
        legal_info=legal or None,
        contact=Contact(contact["name"], contact["phone"], contact["email"]) if contact else None,
    )


def _buyer(data: Mapping[str, Any]) -> Buyer:
    return Buyer(
        name=data["legal_name"],
        address=_address(data),
        vat_id=data.get("vat_id"),
        reference=data.get("buyer_reference"),
        order_reference=data.get("order_reference"),
        email=data.get("email"),
    )


def _line(data: Mapping[str, Any], sign: int) -> Line:
    """One line; a credit note stores its amounts negated but its prices as invoiced."""
    quantity = Decimal(str(data["quantity"]))
    price = Decimal(str(data["unit_price"]))
    amount = sign * Decimal(str(data["amount"]))
    if quantity * price * amount < 0:
        price = -price
    return Line(str(data["description"]), quantity, price, amount)


def einvoice_of(row: Any, *, tz: tzinfo = UTC) -> EInvoice:
    """The e-invoice of ``row``: an :class:`Invoice` or a row with its column names,
    plus ``credits_number`` and ``credits_issued_at`` for a credit note.
    """
    credit_note = row.kind == "credit_note"
    sign = -1 if credit_note else 1
    buyer = row.buyer
    notes = (row.vat_note,) if row.vat_note else ()
    if credit_note and row.reason:
        notes += (row.reason,)
    return EInvoice(
        number=row.number,
        type_code=CREDIT_NOTE if credit_note else COMMERCIAL_INVOICE,
        issue_date=issue_date(row.issued_at, tz),
        service_start=row.service_start,
        service_end=row.service_end,
        currency=row.currency,
        language=buyer.get("language") or "de",
        syntax=buyer.get("einvoice_syntax") or "factur-x",
        seller=_seller(row.seller),
        buyer=_buyer(buyer),
        lines=tuple(_line(line, sign) for line in row.lines),
        vat=Vat(row.vat_category, Decimal(str(row.tax_rate)),
                row.vat_note if row.vat_category != "S" else None),
        net=sign * Decimal(str(row.net)),
        tax=sign * Decimal(str(row.tax)),
        gross=sign * Decimal(str(row.gross)),
        payment=Payment(row.payment_terms or "", row.due_date, row.seller["iban"],
                        row.seller.get("bic")),
        notes=notes,
        preceding=(Reference(row.credits_number, issue_date(row.credits_issued_at, tz))
                   if credit_note else None),
    )


@dataclass(frozen=True)
class EInvoiceState:
    """What the admin and ``mail-status`` show about one invoice's e-invoice."""

    number: str
    status: str | None
    failures: tuple[Mapping[str, str], ...]

    @property
    def invalid(self) -> bool:
        return self.status == "invalid"

    def describe(self) -> str:
        if self.status is None:
            return _("no e-invoice")
        if not self.invalid:
            return _("e-invoice valid")
        rules = "; ".join(f"{f['rule']}: {f['message']}" for f in self.failures)
        return _("e-invoice INVALID, not sent: %(rules)s", rules=rules)


def einvoice_states(session: Session, numbers: Sequence[str]) -> dict[str, EInvoiceState]:
    """The e-invoice state of each invoice in ``numbers`` (one query)."""
    rows = session.execute(
        select(Invoice.number, Invoice.einvoice_status, Invoice.einvoice_failures)
        .where(Invoice.number.in_(list(numbers)))
    ).all()
    return {
        row.number: EInvoiceState(row.number, row.einvoice_status,
                                  tuple(row.einvoice_failures or ()))
        for row in rows
    }


def stored_xml(session: Session, number: str) -> bytes:
    """The e-invoice XML of invoice ``number`` as stored; :class:`XmlNotAvailable` otherwise.

    An XML that failed validation is not handed out: it is not an e-invoice.
    """
    row = session.execute(
        select(Invoice.buyer.is_not(None).label("einvoice"), Invoice.einvoice_xml,
               Invoice.einvoice_status, Invoice.einvoice_failures)
        .where(Invoice.number == number)
    ).one_or_none()
    if row is None:
        raise XmlNotAvailable(_("there is no invoice numbered %(number)r", number=number))
    if not row.einvoice:
        raise XmlNotAvailable(
            _(
                "invoice %(number)s was issued before e-invoices and has no XML (its PDF stays "
                "as issued)",
                number=number,
            )
        )
    if row.einvoice_xml is None:
        raise XmlNotAvailable(
            _(
                "the e-invoice of invoice %(number)s is not built yet; run `flask billing "
                "render-pending`",
                number=number,
            )
        )
    if row.einvoice_status != "valid":
        state = EInvoiceState(number, row.einvoice_status, tuple(row.einvoice_failures or ()))
        raise XmlNotAvailable(
            _("invoice %(number)s: %(state)s", number=number, state=state.describe())
        )
    return bytes(row.einvoice_xml)
