"""Variant assignment, the price version in force, and immutability of the rules."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from plugin.rules import load_rules

CONTRACTS = """\
contracts:
  globex:
    variant: user_licences
    email_invoices: false
  initech:
    variant: team_licences
    prices:
      - effective_from: 2025-02-01
        model: volume
        tiers:
          - up_to: 5
            unit_price: 27.00
          - up_to: null
            unit_price: 21.00
  hooli:
    variant: team_licences
    email_invoices: true
"""


@pytest.fixture
def rules(base, edit):
    return load_rules(edit(("contracts:\n  globex:\n    variant: user_licences\n", CONTRACTS)))


def test_variant_by_cutover_date(rules):
    assert rules.variant_for("acme", date(2023, 2, 28)) == ("user_licences", "cutover")
    assert rules.variant_for("acme", date(2023, 3, 1)) == ("team_licences", "cutover")


def test_variant_of_a_workspace_takes_its_creation_day_in_the_billing_zone(rules):
    """23:30 UTC on 28 February 2023 is already 1 March in Berlin: the cut-over day."""
    late = datetime(2023, 2, 28, 23, 30, tzinfo=UTC)
    workspace = SimpleNamespace(key="acme", created_at=late, contract_variant=None)
    assert rules.variant_of(workspace) == ("team_licences", "cutover")
    earlier = SimpleNamespace(key="acme", created_at=late.replace(hour=22), contract_variant=None)
    assert rules.variant_of(earlier) == ("user_licences", "cutover")
    recorded = SimpleNamespace(key="acme", created_at=late, contract_variant="user_licences")
    assert rules.variant_of(recorded) == ("user_licences", "contract")


def test_variant_by_contract_wins(rules):
    assert rules.variant_for("globex", date(2024, 4, 1)) == ("user_licences", "contract")
    assert rules.variant_for("initech", date(2020, 1, 1)) == ("team_licences", "contract")


def test_price_version_in_force_on_the_first_day_of_the_month(rules):
    first, second = rules.variants["user_licences"]
    assert rules.price_version_for("acme", "user_licences", date(2019, 12, 1)) is None
    assert rules.price_version_for("acme", "user_licences", date(2020, 1, 1)) is first
    assert rules.price_version_for("acme", "user_licences", date(2023, 12, 1)) is first
    assert rules.price_version_for("acme", "user_licences", date(2024, 1, 1)) is second
    assert rules.price_version_for("acme", "user_licences", date(2024, 1, 31)) is second
    assert second.origin == "variants.user_licences.prices[1]"


def test_contract_prices_take_precedence_from_their_first_version(rules):
    standard = rules.variants["team_licences"][0]
    own = rules.contracts["initech"].prices[0]
    assert own.origin == "contracts.initech.prices[0]"
    assert own.tiers[1].up_to is None
    assert rules.price_version_for("initech", "team_licences", date(2025, 1, 1)) is standard
    assert rules.price_version_for("initech", "team_licences", date(2025, 2, 1)) is own
    assert rules.price_version_for("hooli", "team_licences", date(2025, 2, 1)) is standard


def test_who_gets_invoices_by_e_mail(rules):
    assert rules.emails_invoices("acme", "user_licences") is True
    assert rules.emails_invoices("acme", "team_licences") is False
    assert rules.emails_invoices("globex", "user_licences") is False
    assert rules.emails_invoices("hooli", "team_licences") is True


def test_time_zone_currency_and_invoice_numbers(rules):
    assert rules.zoneinfo == ZoneInfo("Europe/Berlin")
    assert rules.currency_exponent == 2
    assert rules.tax_rate == Decimal("0.19")
    assert rules.invoice_number(2026, 7) == "2026-00007"


def test_rules_are_immutable(rules):
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.tax_rate = Decimal("0.07")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.variants["team_licences"][0].unit_price = Decimal(0)
    with pytest.raises(TypeError):
        rules.contracts["evil"] = rules.contracts["globex"]
    with pytest.raises(TypeError):
        rules.variants["team_licences"] = ()
    assert isinstance(rules.variants["user_licences"], tuple)
    assert isinstance(rules.seller.address, tuple)


def test_rules_equal_by_content(base, rules):
    assert load_rules(base) == load_rules(base.encode())
    assert load_rules(base) != rules
    assert len({load_rules(base), load_rules(base), rules}) == 2
    assert load_rules(base).content == base
    assert "content" not in repr(rules)


def test_variant_recorded_on_the_workspace(rules):
    assert rules.variant_for("acme", date(2024, 1, 1), "user_licences") == (
        "user_licences",
        "contract",
    )
    assert rules.variant_for("acme", date(2020, 1, 1), None) == ("user_licences", "cutover")
    # The rules file is accounting's word: its contract wins over the record.
    assert rules.variant_for("initech", date(2025, 2, 1), "user_licences") == (
        "team_licences",
        "contract",
    )
    with pytest.raises(ValueError, match="unknown billing variant 'seats'"):
        rules.variant_for("acme", date(2024, 1, 1), "seats")


def test_summary(rules):
    assert rules.summary() == [
        "currency EUR (2 decimals), tax rate 19 %, time zone Europe/Berlin",
        "cut-over date 2023-03-01: user licences before it, team licences from it",
        "invoice numbers like 2023-00001",
        "team_licences: 1 price version(s), flat from 2023-03-01",
        "user_licences: 2 price version(s), flat from 2020-01-01, graduated from 2024-01-01",
        "contracts: 3 (globex, initech, hooli), 1 with their own prices",
    ]
