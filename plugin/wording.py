"""The words and number formats of a customer's documents, in their language.

Invoices and credit notes are written in the customer's language (``de`` or
``en``); dates, amounts, rates and country names are formatted by Babel from
CLDR data (``1.234,56 €`` and ``15.12.2026`` in German, ``€1,234.56`` and
``15 Dec 2026`` in English), never by hand.  What is stored on an invoice
(line descriptions, payment terms) is worded here once, at issue, so a
later change of wording never alters an issued invoice.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_percent
from stdnum import iban as stdnum_iban

from .formatting import rounded
from .validators import country_names

#: The Babel locale of each document language.
LOCALES = {"de": "de_DE", "en": "en_GB"}

#: Headings and labels of the invoice document.
LABELS: dict[str, dict[str, str]] = {
    "de": {
        "invoice": "Rechnung",
        "credit_note": "Gutschrift",
        "number": "Nummer",
        "invoice_number": "Rechnungsnummer",
        "credit_number": "Gutschriftsnummer",
        "issue_date": "Rechnungsdatum",
        "credit_date": "Datum der Gutschrift",
        "service_period": "Leistungszeitraum",
        "due_date": "Fällig am",
        "customer_number": "Kundennummer",
        "buyer_reference": "Leitweg-ID / Käuferreferenz",
        "order_reference": "Bestellnummer",
        "customer_vat_id": "USt-IdNr. des Kunden",
        "vat_id": "USt-IdNr.",
        "tax_number": "Steuernummer",
        "description": "Beschreibung",
        "quantity": "Menge",
        "unit_price": "Einzelpreis",
        "amount": "Betrag",
        "net": "Nettobetrag",
        "vat": "Umsatzsteuer",
        "gross": "Gesamtbetrag",
        "category_S": "Regelsteuersatz",
        "category_AE": "Steuerschuldnerschaft des Leistungsempfängers",
        "category_O": "Nicht steuerbar",
        "credits": "Diese Gutschrift storniert die Rechnung {number} vom {day}.",
        "reason": "Grund",
        "to": "bis",
        "managing_directors": "Geschäftsführung",
        "register": "Registergericht",
        "contact": "Ansprechpartner",
        "bank": "Bankverbindung",
    },
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "number": "Number",
        "invoice_number": "Invoice number",
        "credit_number": "Credit note number",
        "issue_date": "Invoice date",
        "credit_date": "Credit note date",
        "service_period": "Service period",
        "due_date": "Due date",
        "customer_number": "Customer number",
        "buyer_reference": "Buyer reference",
        "order_reference": "Purchase order",
        "customer_vat_id": "Customer's VAT ID",
        "vat_id": "VAT ID",
        "tax_number": "Tax number",
        "description": "Description",
        "quantity": "Quantity",
        "unit_price": "Unit price",
        "amount": "Amount",
        "net": "Net amount",
        "vat": "VAT",
        "gross": "Total",
        "category_S": "Standard rate",
        "category_AE": "Reverse charge",
        "category_O": "Not subject to VAT",
        "credits": "This credit note cancels invoice {number} of {day}.",
        "reason": "Reason",
        "to": "to",
        "managing_directors": "Managing directors",
        "register": "Commercial register",
        "contact": "Contact",
        "bank": "Bank account",
    },
}

_VARIANT = {
    "de": {"team_licences": "Teamlizenzen", "user_licences": "Nutzerlizenzen"},
    "en": {"team_licences": "Team licences", "user_licences": "User licences"},
}
#: What one licence is of each variant: (singular, plural).
_UNIT = {
    "de": {"team_licences": ("Team", "Teams"), "user_licences": ("Person", "Personen")},
    "en": {"team_licences": ("team", "teams"), "user_licences": ("person", "people")},
}
_PHRASES = {
    "de": {
        "count": "{what}, {month}: {count}",
        "graduated": "{what}, {month}: {unit} {first} bis {last} von {total}, Staffel {band}",
        "volume": "{what}, {month}: {count}, Mengenpreis für {band}",
        "band": "{first} bis {last} {units}",
        "open_band": "ab {first} {units}",
        "minimum": "Mindestbetrag pro Monat, {month}: Aufstockung auf {amount}",
        "pay_by": "Zahlbar bis {day} ohne Abzug.",
        "refund_by": "Der Betrag wird bis {day} erstattet.",
    },
    "en": {
        "count": "{what}, {month}: {count}",
        "graduated": "{what}, {month}: {unit} {first} to {last} of {total}, price band {band}",
        "volume": "{what}, {month}: {count}, volume price for {band}",
        "band": "{first} to {last} {units}",
        "open_band": "{first} {units} and more",
        "minimum": "Minimum monthly charge, {month}: top-up to {amount}",
        "pay_by": "Payable by {day} without deduction.",
        "refund_by": "The amount will be refunded by {day}.",
    },
}


def _locale(language: str) -> str:
    return LOCALES[language]


def money(value: Any, currency: str, language: str, *, exact: bool = False) -> str:
    """An amount with its currency, rounded half-up to the minor unit (``exact``: not below)."""
    amount = rounded(value, currency, exact=exact)
    return format_currency(
        amount, currency, locale=_locale(language), decimal_quantization=False
    )


def day(value: date | str, language: str) -> str:
    """A calendar date: ``15.12.2026`` in German, ``15 Dec 2026`` in English."""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return format_date(value, format="medium", locale=_locale(language))


def month(first_day: date, language: str) -> str:
    """``November 2026`` in either language (the month's name in that language)."""
    return format_date(first_day, format="LLLL yyyy", locale=_locale(language))


def percent(rate: Any, language: str) -> str:
    """``0.19`` as ``19 %`` (German) or ``19%`` (English)."""
    return format_percent(Decimal(str(rate)), locale=_locale(language), decimal_quantization=False)


def country(code: str, language: str) -> str:
    """The country's name in ``language`` (the code itself if CLDR has no name for it)."""
    return country_names(language).get(code, code)


def iban(value: str) -> str:
    """An IBAN in groups of four, as printed: ``DE89 3704 0044 0532 0130 00``."""
    return stdnum_iban.format(value)


def _count(count: int, variant: str, language: str) -> str:
    singular, plural = _UNIT[language][variant]
    return f"{count} {singular if count == 1 else plural}"


def line_description(
    line: Any,
    *,
    model: str,
    variant: str,
    first_day: date,
    total: int,
    currency: str,
    language: str,
    minimum: Decimal | None = None,
) -> str:
    """What one invoice line bills, in words: the variant, the month and the quantity or range.

    ``line`` is a :class:`plugin.rules.Line`; ``model`` the price version's
    pricing model; ``total`` the month's whole quantity (a graduated tier's
    line names its share of it); ``minimum`` the minimum monthly charge that
    a top-up line tops up to.
    """
    phrases = _PHRASES[language]
    what = _VARIANT[language][variant]
    when = month(first_day, language)
    if line.kind == "minimum":
        return phrases["minimum"].format(
            month=when, amount=money(minimum if minimum is not None else line.amount,
                                     currency, language)
        )
    if line.tier_from is None:
        return phrases["count"].format(
            what=what, month=when, count=_count(line.quantity, variant, language)
        )
    units = _UNIT[language][variant][1]
    if line.tier_to is None:
        band = phrases["open_band"].format(first=line.tier_from, units=units)
    else:
        band = phrases["band"].format(first=line.tier_from, last=line.tier_to, units=units)
    if model == "graduated":
        return phrases["graduated"].format(
            what=what,
            month=when,
            unit=units,
            first=line.tier_from,
            last=line.tier_from + line.quantity - 1,
            total=total,
            band=band,
        )
    return phrases["volume"].format(
        what=what, month=when, count=_count(line.quantity, variant, language), band=band
    )


def payment_terms(due: date, language: str, *, credit: bool = False) -> str:
    """The printed terms: ``Zahlbar bis 15.12.2026 ohne Abzug.`` (or the refund, for a credit)."""
    return _PHRASES[language]["refund_by" if credit else "pay_by"].format(day=day(due, language))
