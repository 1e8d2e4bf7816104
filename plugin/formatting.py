"""Amounts and months as text, the same wherever they are shown.

A neutral module: the PDF (through :mod:`plugin.wording`, which adds the
customer's language), the mail templates and the back-office pages all take
their rounding and their forms from here, and none of them from another
adapter.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

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


def amount(value: Any, currency: str) -> str:
    """The back-office pages' form: the stored amount and the currency code, ``123.00 EUR``."""
    return f"{value} {currency}"


def month_name(period: str) -> str:
    """``2026-10`` as ``October 2026``: a fixed English table, independent of the locale."""
    year, month = period.split("-")
    return f"{_MONTHS[int(month) - 1]} {year}"
