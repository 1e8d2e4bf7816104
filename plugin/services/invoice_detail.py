"""What an invoice's page shows: the invoice, its credit note or credited invoice, its mail.

Reads only, in a fixed number of queries: the invoice, the document on the
other side of a credit (the credit note of an invoice, the invoice a credit
note credits) and every delivery of it from the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..formatting import percentage
from ..models import Invoice
from .mail_status import Delivery, deliveries


@dataclass(frozen=True)
class InvoiceLine:
    """One line as printed: what, how many, at what price, the net amount and its VAT."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    net: Decimal
    vat: str


@dataclass(frozen=True)
class InvoicePage:
    invoice: Invoice
    #: The credit note of this invoice, or the invoice this credit note credits.
    related: Invoice | None
    deliveries: list[Delivery]

    @property
    def vat(self) -> str:
        """``S 19 %``: the VAT category (when recorded) and rate of every line, the rate in
        the page's locale (``S 7,5 %`` in German)."""
        rate = percentage(self.invoice.tax_rate)
        return f"{self.invoice.vat_category} {rate}" if self.invoice.vat_category else rate

    @property
    def lines(self) -> list[InvoiceLine]:
        return [
            InvoiceLine(
                str(line["description"]),
                Decimal(str(line["quantity"])),
                Decimal(str(line["unit_price"])),
                Decimal(str(line["amount"])),
                self.vat,
            )
            for line in self.invoice.lines or ()
        ]

    @property
    def buyer_lines(self) -> list[str]:
        """The customer's address as printed, line by line (empty for invoices from before
        billing details were stored)."""
        return address_lines(self.invoice.buyer)


def address_lines(party: dict[str, Any] | None) -> list[str]:
    """A stored buyer or seller as the lines of an address."""
    if not party:
        return []
    name = party.get("legal_name") or party.get("name")
    city = " ".join(str(part) for part in (party.get("postcode"), party.get("city")) if part)
    lines = [name, *(party.get("address_lines") or ()), city, party.get("country")]
    return [str(line) for line in lines if line]


def invoice_page(session: Session, invoice_id: int) -> InvoicePage | None:
    """The invoice with this id and what its page shows; ``None`` when there is none."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        return None
    other = invoice.credited_by_id if invoice.kind == "invoice" else invoice.credits_invoice_id
    related = session.scalar(select(Invoice).where(Invoice.id == other)) if other else None
    return InvoicePage(invoice, related, deliveries(session, invoice_number=invoice.number))
