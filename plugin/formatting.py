"""Amounts, numbers and months as text, the same wherever they are shown.

A neutral module: the PDF (through :mod:`plugin.wording`, which adds the
customer's language), the mail templates and the back-office pages all take
their rounding and their forms from here, and none of them from another
adapter.

The back-office's forms (:func:`amount`, :func:`number`, :func:`percentage`)
follow the page's locale through Babel: Flask-Babel's locale in a request of
a host that has it, English everywhere else (the CLI, the worker, a host
without Flask-Babel), the same rule that picks the language of the plugin's
strings (:func:`plugin.i18n.babel_active`).  ``1.234,50 EUR`` and ``19 %`` on a
German page, ``1,234.50 EUR`` and ``19 %`` on an English one.  Dates
(:func:`day`, :func:`instant`) too: ``30.11.2026 14:05 MEZ`` in German, while
English pages keep the ISO form they always had (``2026-11-30 14:05 CET``).
Exports are data and keep machine-readable numbers and dates; they do not use
these, nor does anything stored or written to the log.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal
from flask_babel import get_locale

from .i18n import babel_active
from .instants import format_instant
from .rules.currencies import MINOR_UNITS

_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def rounded(value: Any, currency: str, *, exact: bool = False) -> Decimal:
    """``value`` rounded half-up to the currency's minor unit.

    ``exact`` keeps further decimals that a unit price may have (a tier price
    of 0.125 must not print as 0.13), but never shows fewer than the minor unit.
    """
    amount = Decimal(str(value))
    places = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    exponent = amount.as_tuple().exponent
    if not exact or (isinstance(exponent, int) and exponent >= -MINOR_UNITS.get(currency, 2)):
        amount = amount.quantize(places, rounding=ROUND_HALF_UP)
    return amount


def money(value: Any, currency: str, *, exact: bool = False) -> str:
    """``value`` with the currency's symbol (``€1,234.50``), or its code after the digits.

    Locale-independent: the mail templates' form.
    """
    amount = rounded(value, currency, exact=exact)
    digits = f"{abs(amount):,f}"
    sign = "-" if amount < 0 else ""
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {currency}"


#: The back-office's amount: the digits in the locale's form, then the currency's code.
#: The code, not the symbol: the pages' tables keep one form for every currency, and
#: English pages keep the form they always had (``123.00 EUR``).
_AMOUNT_PATTERN = "#,##0.00 ¤¤"


def page_locale() -> str:
    """The locale the back-office page is shown in: Flask-Babel's, else ``en``."""
    if not babel_active():
        return "en"
    chosen = get_locale()
    return str(chosen) if chosen is not None else "en"


def amount(value: Any, currency: str, *, code: bool = True) -> str:
    """The back-office pages' form of an amount: ``1.234,50 EUR`` (German), ``1,234.50 EUR``.

    Never fewer decimals than the currency's minor unit, and never fewer than
    the value has (a tier price of 0.125 stays 0.125).  ``code=False`` leaves
    the currency out, for a column that names it in its heading.
    """
    shown = rounded(value, currency, exact=True)
    text = format_currency(
        shown,
        currency,
        format=_AMOUNT_PATTERN,
        locale=page_locale(),
        currency_digits=True,
        decimal_quantization=False,
    )
    return text if code else text.rsplit(" ", 1)[0]


def number(value: Any) -> str:
    """A count or a quantity in the page's locale: ``1.234`` (German), ``1,234``, ``2,5``."""
    return format_decimal(Decimal(str(value)), locale=page_locale(), decimal_quantization=False)


def whole(value: Any) -> str:
    """A number rounded half-up to a whole one, in the page's locale (a chart's bar label)."""
    return number(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percentage(rate: Any) -> str:
    """A rate as a percentage in the page's locale: ``0.19`` as ``19 %``, ``0.075`` as ``7,5 %``.

    A space before the sign in every language: the form the pages always had.
    """
    return f"{number((Decimal(str(rate)) * 100).normalize())} %"


def _iso_dates(locale: str) -> bool:
    """English pages write dates as ISO 8601 (``2026-11-30``), the form they always had;
    every other language reads its own (CLDR's medium date: ``30.11.2026``)."""
    return Locale.parse(locale).language == "en"


def day(value: date | str) -> str:
    """A calendar date in the page's locale: ``2026-11-30``, ``30.11.2026`` (German)."""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    locale = page_locale()
    return value.isoformat() if _iso_dates(locale) else format_date(value, "medium", locale)


def instant(value: datetime, zone: tzinfo) -> str:
    """An instant in ``zone`` to the minute with the zone's name, in the page's locale.

    English: :func:`plugin.instants.format_instant` (``2026-11-30 14:05 CET``);
    German: ``30.11.2026 14:05 MEZ`` (summer: ``MESZ``).  A naive value is UTC.
    """
    locale = page_locale()
    if _iso_dates(locale):
        return format_instant(value, zone)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone)
    return " ".join(
        (
            format_date(local.date(), "medium", locale),
            format_time(local, "short", locale=locale),
            format_datetime(local, "z", tzinfo=zone, locale=locale),
        )
    )


def month_name(period: str) -> str:
    """``2026-10`` as ``October 2026``: a fixed English table, independent of the locale."""
    year, month = period.split("-")
    return f"{_MONTHS[int(month) - 1]} {year}"
