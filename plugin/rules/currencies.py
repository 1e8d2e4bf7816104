"""The ISO 4217 currencies the rules file may name, with their minor units.

A small built-in table instead of a dependency: what matters for billing is
the number of decimals an amount is rounded to (the minor-unit exponent),
and that a typo such as ``EUO`` is refused.  Codes: the European currencies
(EUR, GBP, CHF, SEK, NOK, DKK, ISK, PLN, CZK, HUF, RON, BGN, RSD, UAH, TRY),
the major others (USD, CAD, AUD, NZD, JPY, CNY, HKD, SGD, KRW, INR, BRL, MXN,
CLP, ZAR, ILS, AED, SAR) and the three-decimal dinars (KWD, BHD, OMR, JOD, TND).
Add a code here (with its exponent from ISO 4217) to allow it.
"""

from __future__ import annotations

from types import MappingProxyType

MINOR_UNITS = MappingProxyType({
    "AED": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0,
    "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "ILS": 2,
    "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2,
    "NZD": 2, "OMR": 3, "PLN": 2, "RON": 2, "RSD": 2, "SAR": 2, "SEK": 2, "SGD": 2,
    "TND": 3, "TRY": 2, "UAH": 2, "USD": 2, "ZAR": 2,
})
"""ISO 4217 code → number of decimals of its minor unit (EUR 2: cents; JPY 0)."""
