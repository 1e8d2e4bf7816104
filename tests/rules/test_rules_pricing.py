"""Price arithmetic: worked examples, the explanation, and properties of the tier maths."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.rules import (
    Line,
    NoPriceError,
    PriceVersion,
    Tier,
    compute,
    explain,
    load_rules_file,
    net_lines,
    quote,
    round_money,
    usage_lines,
)

REPOSITORY = Path(__file__).resolve().parents[2]
D = Decimal
TIERS = (Tier(10, D("8.00")), Tier(50, D("6.50")), Tier(None, D("5.00")))


def version(model: str, **kwargs) -> PriceVersion:
    return PriceVersion(date(2024, 1, 1), model, **kwargs)


def test_flat():
    assert net_lines(version("flat", unit_price=D("29.00")), 3) == [
        Line("licences", 3, D("29.00"), D("87.00"))
    ]


def test_graduated_splits_the_quantity_over_the_tiers():
    lines = net_lines(version("graduated", tiers=TIERS), 60)
    assert [(line.description, line.quantity, line.amount) for line in lines] == [
        ("tier 1–10", 10, D("80.00")),
        ("tier 11–50", 40, D("260.00")),
        ("tier 51 and more", 10, D("50.00")),
    ]


def test_graduated_stops_in_the_tier_the_quantity_reaches():
    lines = net_lines(version("graduated", tiers=TIERS), 10)
    assert [(line.quantity, line.amount) for line in lines] == [(10, D("80.00"))]


def test_volume_prices_the_whole_quantity_at_one_tier():
    assert net_lines(version("volume", tiers=TIERS), 11) == [
        Line("volume tier 11–50", 11, D("6.50"), D("71.50"))
    ]
    assert net_lines(version("volume", tiers=TIERS), 51)[0].amount == D("255.00")


def test_minimum_charge_tops_up():
    priced = version("graduated", tiers=TIERS, minimum_monthly_charge=D("49.00"))
    lines = net_lines(priced, 3)
    assert lines[-1] == Line("minimum monthly charge top-up", 1, D("25.00"), D("25.00"), "minimum")
    totals = compute(priced, 3, D("0.19"), 2)
    assert (totals.net, totals.tax, totals.gross) == (D("49.00"), D("9.31"), D("58.31"))
    assert compute(priced, 0, D("0.19"), 2).net == D("49.00")
    assert len(compute(priced, 7, D("0.19"), 2).lines) == 1


def test_nothing_to_bill():
    totals = compute(version("flat", unit_price=D("29.00")), 0, D("0.19"), 2)
    assert totals.lines == ()
    assert (totals.net, totals.tax, totals.gross) == (D("0.00"), D("0.00"), D("0.00"))


def test_rounding_is_half_up_per_line_and_on_tax():
    assert round_money(D("0.125"), 2) == D("0.13")
    assert round_money(D("0.124999"), 2) == D("0.12")
    assert round_money(D("2.5"), 0) == D("3")
    totals = compute(version("flat", unit_price=D("0.0125")), 10, D("0.19"), 2)
    assert totals.lines[0].amount == D("0.13")
    assert totals.net == D("0.13")
    assert totals.tax == D("0.02")  # 0.0247 → 0.02
    totals = compute(version("flat", unit_price=D("2.50")), 1, D("0.19"), 2)
    assert totals.tax == D("0.48")  # 0.475 → 0.48, half-up


def test_currency_without_minor_unit():
    totals = compute(version("flat", unit_price=D("999.5")), 1, D("0.10"), 0)
    assert (totals.net, totals.tax, totals.gross) == (D("1000"), D("100"), D("1100"))


def test_negative_quantity_is_a_programming_error():
    with pytest.raises(ValueError, match="negative"):
        usage_lines(version("flat", unit_price=D(1)), -1)


@pytest.fixture(scope="module")
def shipped():
    return load_rules_file(REPOSITORY / "pricing_rules.yaml")


def test_explain_graduated_with_cutover(shipped):
    assert explain(shipped, "acme", created_on=date(2022, 5, 10), month=date(2024, 5, 17),
                   quantity=60) == [
        "Workspace acme, month 2024-05 (Europe/Berlin)",
        "Variant: user_licences – workspace created 2022-05-10, before the cut-over date "
        "2023-03-01",
        "Price version: variants.user_licences.prices[1], in force from 2024-01-01: graduated "
        "tiers: 1–10 at 9.00; 11–50 at 7.50; 51 and more at 6.00; minimum monthly charge 59.00",
        "Quantity: 60 users",
        "  tier 1–10: 10 × 9.00 = 90.00",
        "  tier 11–50: 40 × 7.50 = 300.00",
        "  tier 51 and more: 10 × 6.00 = 60.00",
        "Net: 90.00 + 300.00 + 60.00 = 450.00 EUR",
        "Tax 19 %: 450.00 × 0.19 = 85.50 EUR",
        "Gross: 450.00 + 85.50 = 535.50 EUR",
        f"Rules: sha256 {shipped.sha256[:12]}",
    ]


def test_explain_contract_volume_and_minimum(shipped):
    lines = explain(shipped, "initech", created_on=date(2025, 2, 1), month=date(2025, 3, 1),
                    quantity=7)
    assert lines[1] == (
        "Variant: team_licences – individual contract (contracts.initech in the rules)"
    )
    assert lines[2].startswith(
        "Price version: contracts.initech.prices[0], in force from 2025-02-01"
    )
    assert lines[4] == "  volume tier 6–20: 7 × 24.50 = 171.50"
    assert lines[6] == "Tax 19 %: 171.50 × 0.19 = 32.5850, rounded half-up to 32.59 EUR"
    lines = explain(shipped, "acme", created_on=date(2022, 5, 10), month=date(2023, 5, 1),
                    quantity=3)
    assert lines[5:7] == [
        "  minimum monthly charge top-up: minimum 49.00 minus 24.00 = 25.00",
        "Net: 24.00 + 25.00 = 49.00 EUR",
    ]


def test_explain_matches_quote(shipped):
    result = quote(shipped, "nordwind", created_on=date(2023, 6, 1), month=date(2026, 2, 1),
                   quantity=3)
    assert (result.variant, result.reason) == ("team_licences", "cutover")
    assert result.totals.gross == D("114.24")
    assert f"Gross: 96.00 + 18.24 = {result.totals.gross} EUR" in explain(
        shipped, "nordwind", created_on=date(2023, 6, 1), month=date(2026, 2, 1), quantity=3
    )


def test_no_price_in_force(shipped):
    with pytest.raises(NoPriceError, match="no price version of team_licences is in force on "
                       "2023-02-01 for workspace x"):
        quote(shipped, "x", created_on=date(2023, 3, 1), month=date(2023, 2, 1), quantity=1)


# Properties -----------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=10_000, places=2) | st.decimals(
    min_value=0, max_value=100, places=6
)
rates = st.decimals(min_value=0, max_value=D("0.9999"), places=4)
exponents = st.sampled_from([0, 2, 3])
quantities = st.integers(min_value=0, max_value=5_000)


@st.composite
def tier_lists(draw) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=2_000), max_size=5)))
    return tuple(Tier(up_to, draw(prices)) for up_to in [*bounds, None])


@st.composite
def versions(draw, models=("flat", "graduated", "volume")) -> PriceVersion:
    model = draw(st.sampled_from(models))
    minimum = draw(st.none() | prices)
    if model == "flat":
        return version(model, unit_price=draw(prices), minimum_monthly_charge=minimum)
    return version(model, tiers=draw(tier_lists()), minimum_monthly_charge=minimum)


def _tier_of(tiers: tuple[Tier, ...], quantity: int) -> Tier:
    return next(tier for tier in tiers if tier.up_to is None or quantity <= tier.up_to)


@given(tiers=tier_lists(), quantity=quantities)
def test_graduated_total_is_the_sum_over_tiers(tiers, quantity):
    expected = D(0)
    lower = 0
    for tier in tiers:
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        expected += max(0, upper - lower) * tier.unit_price
        lower = tier.up_to or lower
    lines = net_lines(version("graduated", tiers=tiers), quantity)
    assert sum((line.amount for line in lines), D(0)) == expected
    assert sum(line.quantity for line in lines) == quantity


@given(tiers=tier_lists(), quantity=st.integers(min_value=1, max_value=5_000))
def test_volume_total_is_quantity_times_the_price_of_its_tier(tiers, quantity):
    lines = net_lines(version("volume", tiers=tiers), quantity)
    assert [line.amount for line in lines] == [quantity * _tier_of(tiers, quantity).unit_price]


@given(
    priced=versions(models=("flat", "graduated")),
    quantity=quantities,
    more=st.integers(min_value=0, max_value=500),
    rate=rates,
    exponent=exponents,
)
def test_totals_never_decrease_as_quantity_grows(priced, quantity, more, rate, exponent):
    smaller = compute(priced, quantity, rate, exponent)
    larger = compute(priced, quantity + more, rate, exponent)
    assert smaller.net <= larger.net
    assert smaller.gross <= larger.gross


@given(tiers=tier_lists(), quantity=quantities, more=st.integers(min_value=0, max_value=500))
def test_volume_totals_never_decrease_within_one_tier(tiers, quantity, more):
    tier = _tier_of(tiers, quantity)
    if tier.up_to is not None:
        more = min(more, tier.up_to - quantity)
    priced = version("volume", tiers=tiers)
    smaller = sum((line.amount for line in net_lines(priced, quantity)), D(0))
    larger = sum((line.amount for line in net_lines(priced, quantity + more)), D(0))
    assert smaller <= larger


@given(priced=versions(), quantity=quantities, minimum=prices, rate=rates, exponent=exponents)
def test_minimum_charge_never_lowers_a_total(priced, quantity, minimum, rate, exponent):
    without = compute(
        PriceVersion(priced.effective_from, priced.model, priced.unit_price, priced.tiers),
        quantity, rate, exponent,
    )
    with_minimum = compute(
        PriceVersion(priced.effective_from, priced.model, priced.unit_price, priced.tiers,
                     minimum),
        quantity, rate, exponent,
    )
    assert with_minimum.net >= without.net
    assert with_minimum.net >= round_money(minimum, exponent)
    assert with_minimum.net == max(without.net, round_money(minimum, exponent))


@given(priced=versions(), quantity=quantities, rate=rates, exponent=exponents)
def test_totals_add_up_and_are_quantized_decimals(priced, quantity, rate, exponent):
    totals = compute(priced, quantity, rate, exponent)
    assert totals.gross == totals.net + totals.tax
    assert totals.tax == round_money(totals.net * rate, exponent)
    assert totals.net == sum((line.amount for line in totals.lines), D(0))
    for amount in (totals.net, totals.tax, totals.gross, *(line.amount for line in totals.lines)):
        assert isinstance(amount, Decimal)
        assert amount.as_tuple().exponent == -exponent
        assert amount >= 0
    exact = sum((line.amount for line in usage_lines(priced, quantity)), D(0))
    usage = [line for line in totals.lines if line.kind == "usage"]
    assert abs(sum((line.amount for line in usage), D(0)) - exact) <= len(usage) * D(
        "0.5"
    ).scaleb(-exponent)


def test_explain_variant_recorded_on_the_workspace(shipped):
    lines = explain(shipped, "nordwind", created_on=date(2023, 6, 1), month=date(2024, 5, 1),
                    quantity=4, contract_variant="user_licences")
    assert lines[1] == "Variant: user_licences – individual contract (recorded on the workspace)"
    assert lines[4:6] == [
        "  tier 1–10: 4 × 9.00 = 36.00",
        "  minimum monthly charge top-up: minimum 59.00 minus 36.00 = 23.00",
    ]
