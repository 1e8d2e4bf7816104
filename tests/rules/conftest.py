"""A small valid rules file with known line numbers, and helpers to break it.

The tests change one line of ``BASE`` at a time and compare the exact
messages, so the line numbers in the comments below are part of the tests.
"""

from __future__ import annotations

import pytest

from plugin.rules import RulesError, load_rules

BASE = """\
currency: EUR
tax_rate: 0.19
timezone: Europe/Berlin
invoice_number_format: "{year}-{seq:05d}"
seller:
  name: Wolkenwerk GmbH
  address:
    - Königstraße 12
    - 70173 Stuttgart
  vat_id: DE123456789
  email: rechnungen@wolkenwerk.example
cutover_date: 2023-03-01
variants:
  team_licences:
    prices:
      - effective_from: 2023-03-01
        model: flat
        unit_price: 29.00
  user_licences:
    prices:
      - effective_from: 2020-01-01
        model: flat
        unit_price: 8.00
      - effective_from: 2024-01-01
        model: graduated
        tiers:
          - up_to: 10
            unit_price: 9.00
          - up_to: null
            unit_price: 6.00
        minimum_monthly_charge: 59.00
contracts:
  globex:
    variant: user_licences
"""
# Lines: 2 tax_rate, 6 seller.name, 16-18 team_licences.prices[0],
# 21-23 user_licences.prices[0], 24-31 user_licences.prices[1] (27-28 tiers[0],
# 29-30 tiers[1], 31 minimum_monthly_charge), 33-34 contracts.globex.


def _edit(*changes: tuple[str, str], text: str = BASE) -> str:
    """``text`` with each ``old`` (which must occur exactly once) replaced by ``new``."""
    for old, new in changes:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def _errors_of(text: str | bytes, **kwargs: object) -> list[str]:
    """The located messages of an invalid rules text, as printed."""
    with pytest.raises(RulesError) as caught:
        load_rules(text, **kwargs)
    return [str(error) for error in caught.value.errors]


@pytest.fixture
def base() -> str:
    return BASE


@pytest.fixture
def edit():
    return _edit


@pytest.fixture
def errors_of():
    return _errors_of
