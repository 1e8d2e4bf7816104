"""The words and number formats of a customer's documents, in their language.

Invoices and credit notes are written in the customer's language (``de`` or
``en``); dates, amounts, rates and country names are formatted by Babel from
CLDR data (``1.234,56 €`` and ``15.12.2026`` in German, ``€1,234.56`` and
``15 Dec 2026`` in English), never by hand.  What is stored on an invoice
(line descriptions, payment terms) is worded here once, at issue, so a
later change of wording never alters an issued invoice.

The words (the PDF's labels, the stored line descriptions and payment
terms) are the plugin's gettext catalogue, context ``document``: English is
the source (the msgids), German its ``translations/de`` entries.  They are
looked up with :func:`plugin.i18n.translations`, so no request is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_percent
from babel.support import NullTranslations
from stdnum import iban as stdnum_iban

from .formatting import rounded
from .i18n import translations
from .validators import country_names

#: The Babel locale of each document language.
LOCALES = {"de": "de_DE", "en": "en_GB"}


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


@dataclass(frozen=True)
class _Words:
    """The catalogue of one language, as the templates' newstyle gettext reads it.

    ``%(name)s`` placeholders are filled from the keyword arguments (a
    literal ``%`` is ``%%``), ``%(num)d`` with the count of a plural form, so
    the stored texts follow the same rules as the PDF's labels and the mail.
    """

    catalogue: NullTranslations

    def pgettext(self, context: str, message: str, **variables: Any) -> str:
        return str(self.catalogue.pgettext(context, message)) % variables

    def npgettext(
        self, context: str, singular: str, plural: str, num: int, **variables: Any
    ) -> str:
        text = self.catalogue.npgettext(context, singular, plural, num)
        return text % {"num": num, **variables}


def _words(language: str) -> _Words:
    return _Words(translations(language))


def _variant(variant: str, words: _Words) -> str:
    """What a line bills, by variant: ``Team licences``."""
    return {
        "team_licences": words.pgettext("document", "Team licences"),
        "user_licences": words.pgettext("document", "User licences"),
    }[variant]


def _units(variant: str, words: _Words) -> str:
    """A variant's licences as the plural noun of a range (``teams 1 to 10``), not of a count."""
    return {
        "team_licences": words.pgettext("document", "teams"),
        "user_licences": words.pgettext("document", "people"),
    }[variant]


def _count(count: int, variant: str, words: _Words) -> str:
    """``1 team``, ``3 teams``: the count's own plural form (the catalogue's plural rule)."""
    return {
        "team_licences": words.npgettext("document", "%(num)d team", "%(num)d teams", count),
        "user_licences": words.npgettext("document", "%(num)d person", "%(num)d people", count),
    }[variant]


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
    a top-up line tops up to.  The words are the catalogue's (context
    ``document``) in ``language``, wherever this runs (the worker, the CLI).
    """
    words = _words(language)
    when = month(first_day, language)
    if line.kind == "minimum":
        topped_up = minimum if minimum is not None else line.amount
        return words.pgettext(
            "document",
            "Minimum monthly charge, %(month)s: top-up to %(amount)s",
            month=when,
            amount=money(topped_up, currency, language),
        )
    what = _variant(variant, words)
    if line.tier_from is None:
        return words.pgettext(
            "document",
            "%(what)s, %(month)s: %(count)s",
            what=what,
            month=when,
            count=_count(line.quantity, variant, words),
        )
    units = _units(variant, words)
    if line.tier_to is None:
        band = words.pgettext(
            "document", "%(first)s %(units)s and more", first=line.tier_from, units=units
        )
    else:
        band = words.pgettext(
            "document",
            "%(first)s to %(last)s %(units)s",
            first=line.tier_from,
            last=line.tier_to,
            units=units,
        )
    if model == "graduated":
        return words.pgettext(
            "document",
            "%(what)s, %(month)s: %(units)s %(first)s to %(last)s of %(total)s, "
            "price band %(band)s",
            what=what,
            month=when,
            units=units,
            first=line.tier_from,
            last=line.tier_from + line.quantity - 1,
            total=total,
            band=band,
        )
    return words.pgettext(
        "document",
        "%(what)s, %(month)s: %(count)s, volume price for %(band)s",
        what=what,
        month=when,
        count=_count(line.quantity, variant, words),
        band=band,
    )


def payment_terms(due: date, language: str, *, credit: bool = False) -> str:
    """The printed terms: ``Zahlbar bis 15.12.2026 ohne Abzug.`` (or the refund, for a credit)."""
    words, when = _words(language), day(due, language)
    if credit:
        return words.pgettext("document", "The amount will be refunded by %(day)s.", day=when)
    return words.pgettext("document", "Payable by %(day)s without deduction.", day=when)
