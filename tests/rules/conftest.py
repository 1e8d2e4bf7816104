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
  register: {court: AG Stuttgart, number: HRB 765432, managing_directors: [Erika Muster]}
  address: {street: [Königstraße 12], postcode: "70173", city: Stuttgart, country: DE}
  contact: {name: Petra Schneider, phone: "+49 711 4005", email: buch@wolkenwerk.example}
  vat_id: DE136695976
  email: rechnungen@wolkenwerk.example
  payment: {terms_days: 14, iban: DE89370400440532013000}
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
# Lines: 2 tax_rate, 6 seller.name, 10 seller.vat_id, 12 seller.payment,
# 17-19 team_licences.prices[0], 22-24 user_licences.prices[0],
# 25-32 user_licences.prices[1] (28-29 tiers[0], 30-31 tiers[1],
# 32 minimum_monthly_charge), 34-35 contracts.globex.


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
