"""Sample e-invoice documents for the tests: one per VAT case, a credit note, XRechnung."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

from plugin.einvoice import (
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

HOSTILE = '</ram:Name><script>alert(1)</script>&amp; <![CDATA[x]]> =cmd|"/c calc"!A1'
LEITWEG = "04011000-12345-03"

SELLER = Seller(
    name="Example SaaS GmbH",
    address=Address(("Hauptstraße 1",), "10115", "Berlin", "DE"),
    email="billing@example-saas.test",
    vat_id="DE123456788",
    tax_number="30/123/45678",
    register_number="HRB 123456 B",
    legal_info="Amtsgericht Charlottenburg, HRB 123456 B; Geschäftsführerin: Erika Mustermann",
    contact=Contact("Accounting", "+49 30 1234567", "accounting@example-saas.test"),
)

DOMESTIC = Buyer(
    name="Müller & Söhne GmbH",
    address=Address(("Marienplatz 8", "3. OG"), "80331", "München", "DE"),
    vat_id="DE811907980",
    order_reference="PO-2026-17",
    email="rechnungen@mueller.test",
)


def invoice(
    *,
    buyer: Buyer = DOMESTIC,
    category: str = "S",
    syntax: str = "factur-x",
    credit_note: bool = False,
    lines: tuple[Line, ...] | None = None,
) -> EInvoice:
    rate = Decimal("0.19") if category == "S" else Decimal(0)
    lines = lines or (
        Line("User licences, November 2026: 3 people", Decimal(3), Decimal("12.50"),
             Decimal("37.50")),
        Line("Tier 11 to 20 people, 2 people at 0.125", Decimal(2), Decimal("0.125"),
             Decimal("0.25")),
    )
    net = sum((line.amount for line in lines), Decimal(0))
    tax = (net * rate).quantize(Decimal("0.01"))
    reasons = {"S": None, "AE": "Steuerschuldnerschaft des Leistungsempfängers / Reverse charge",
               "O": "Nicht im Inland steuerbare Leistung / Not taxable in Germany"}
    return EInvoice(
        number="2026-000042" if not credit_note else "2026-000043",
        type_code=CREDIT_NOTE if credit_note else COMMERCIAL_INVOICE,
        issue_date=date(2026, 12, 1),
        service_start=date(2026, 11, 1),
        service_end=date(2026, 11, 30),
        currency="EUR",
        language="de",
        syntax=syntax,
        seller=SELLER,
        buyer=buyer,
        lines=lines,
        vat=Vat(category, rate, reasons[category]),
        net=net,
        tax=tax,
        gross=net + tax,
        payment=Payment("Zahlbar ohne Abzug bis 15.12.2026", date(2026, 12, 15),
                        "DE89370400440532013000", "COBADEFFXXX"),
        notes=(reasons[category],) if reasons[category] else (),
        preceding=Reference("2026-000042", date(2026, 12, 1)) if credit_note else None,
    )


def reverse_charge() -> EInvoice:
    buyer = Buyer("Acme SARL", Address(("12 rue de la Paix",), "75002", "Paris", "FR"),
                  vat_id="FR40303265045", email="compta@acme.test")
    return invoice(buyer=buyer, category="AE")


def outside_eu() -> EInvoice:
    buyer = Buyer("Globex Inc.", Address(("1 Main St",), "10001", "New York", "US"),
                  email="ap@globex.test")
    return invoice(buyer=buyer, category="O")


def xrechnung() -> EInvoice:
    buyer = dataclasses.replace(DOMESTIC, name="Stadt Köln, Amt für Informationsverarbeitung",
                                reference=LEITWEG, email="erechnung@stadt-koeln.test")
    return invoice(buyer=buyer, syntax="xrechnung")


def hostile() -> EInvoice:
    buyer = dataclasses.replace(
        DOMESTIC, name=HOSTILE, address=Address((HOSTILE, "line\r\nbreak"), "80331", HOSTILE, "DE"),
        order_reference=HOSTILE,
    )
    return invoice(buyer=buyer)
