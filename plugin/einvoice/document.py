"""One e-invoice document as plain, frozen values: what the CII builder writes.

The database adapter (:mod:`plugin.services.einvoices`) turns a stored invoice
into an :class:`EInvoice`; nothing here knows about the database, Flask or
PDFs.  Amounts are :class:`~decimal.Decimal` and, as EN 16931 requires, a
credit note carries *positive* amounts: the sign lives in the type code (381).
The checks in ``__post_init__`` are the ones whose violation would be a
programming error in the adapter; everything a person could get wrong is left
to the validators, which name the EN 16931 rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

Syntax = Literal["factur-x", "xrechnung"]
VatCategory = Literal["S", "AE", "O"]

#: UNTDID 1001 document type codes used here.
COMMERCIAL_INVOICE = "380"
CREDIT_NOTE = "381"

#: BT-24 specification identifiers.
GUIDELINES: dict[str, str] = {
    "factur-x": "urn:cen.eu:en16931:2017",
    "xrechnung": "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0",
}

#: The exemption reason code (BT-121) each category needs; S has none.
EXEMPTION_CODES: dict[str, str | None] = {"S": None, "AE": "VATEX-EU-AE", "O": "VATEX-EU-O"}


@dataclass(frozen=True)
class Address:
    lines: tuple[str, ...]
    postcode: str
    city: str
    country: str

    def __post_init__(self) -> None:
        if len(self.country) != 2 or not self.country.isalpha() or not self.country.isupper():
            raise ValueError(f"country must be an ISO 3166-1 alpha-2 code, not {self.country!r}")
        if len(self.lines) > 3:
            raise ValueError("CII holds at most three address lines (BT-35, BT-36, BT-162)")


@dataclass(frozen=True)
class Contact:
    """The seller's contact point (BG-6): XRechnung needs all three (BR-DE-5/6/7)."""

    name: str
    phone: str
    email: str


@dataclass(frozen=True)
class Seller:
    name: str
    address: Address
    email: str
    vat_id: str | None = None
    tax_number: str | None = None
    #: BT-30, e.g. ``HRB 123456``; with the court and directors in ``legal_info`` (BT-33).
    register_number: str | None = None
    legal_info: str | None = None
    contact: Contact | None = None


@dataclass(frozen=True)
class Buyer:
    name: str
    address: Address
    vat_id: str | None = None
    #: BT-10; the Leitweg-ID of a German public-sector buyer.
    reference: str | None = None
    #: BT-13, the buyer's purchase-order number.
    order_reference: str | None = None
    #: BT-49, the buyer's electronic address (an e-mail address here).
    email: str | None = None


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Vat:
    """The document's one VAT treatment (BG-23): category, rate and exemption reason."""

    category: VatCategory
    rate: Decimal
    exemption_reason: str | None = None

    @property
    def exemption_code(self) -> str | None:
        return EXEMPTION_CODES[self.category]

    def __post_init__(self) -> None:
        if self.category not in EXEMPTION_CODES:
            raise ValueError(f"VAT category must be S, AE or O, not {self.category!r}")
        if self.category != "S" and self.rate != 0:
            raise ValueError(f"VAT category {self.category} has rate 0, not {self.rate}")


@dataclass(frozen=True)
class Payment:
    """Payment terms (BT-20), due date (BT-9) and SEPA credit transfer (BG-16/17, code 58)."""

    terms: str
    due_date: date
    iban: str
    bic: str | None = None


@dataclass(frozen=True)
class Reference:
    """The invoice a credit note corrects: BT-25 and BT-26."""

    number: str
    issue_date: date


@dataclass(frozen=True)
class EInvoice:
    number: str
    type_code: str
    issue_date: date
    service_start: date
    service_end: date
    currency: str
    language: str
    syntax: Syntax
    seller: Seller
    buyer: Buyer
    lines: tuple[Line, ...]
    vat: Vat
    net: Decimal
    tax: Decimal
    gross: Decimal
    payment: Payment
    notes: tuple[str, ...] = ()
    preceding: Reference | None = None

    def __post_init__(self) -> None:
        if self.type_code not in (COMMERCIAL_INVOICE, CREDIT_NOTE):
            raise ValueError(f"type code must be 380 or 381, not {self.type_code!r}")
        if (self.type_code == CREDIT_NOTE) != (self.preceding is not None):
            raise ValueError("a credit note, and only a credit note, names the invoice it corrects")
        if self.syntax not in GUIDELINES:
            raise ValueError(f"syntax must be factur-x or xrechnung, not {self.syntax!r}")
        if self.service_end < self.service_start:
            raise ValueError("the service period ends before it starts")
        if not self.lines:
            raise ValueError("an invoice has at least one line (BG-25)")

    @property
    def guideline(self) -> str:
        return GUIDELINES[self.syntax]

    @property
    def is_credit_note(self) -> bool:
        return self.type_code == CREDIT_NOTE
