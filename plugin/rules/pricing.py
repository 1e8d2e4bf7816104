"""Price arithmetic: ``Decimal`` only, rounded half-up to the currency's minor unit.

Tier arithmetic (``up_to`` is inclusive; the previous tier's ``up_to`` is the
exclusive lower bound):

- **flat**: quantity × unit price;
- **graduated**: each tier's share of the quantity at that tier's price
  (60 licences over tiers up to 10 / up to 50 / open: 10 + 40 + 10);
- **volume**: the whole quantity at the price of the tier it falls in.

An invoice shows each line's amount rounded, and its net must be the sum of
what it shows, so :func:`compute` rounds every line and the net is their sum
(a rounded sum).  A minimum monthly charge tops the net up with one more line.
:func:`explain` prints the same computation step by step: what
``flask billing rules explain`` shows is exactly what an invoice uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import TYPE_CHECKING

from ..i18n import _
from .model import PriceVersion, PricingRules, Tier

if TYPE_CHECKING:
    from .vat import VatTreatment

MINIMUM_DESCRIPTION = "minimum monthly charge top-up"
UNITS = {"team_licences": "teams", "user_licences": "users"}


class NoPriceError(LookupError):
    """No price version is in force for the month asked about."""


@dataclass(frozen=True)
class Line:
    """One invoice line: ``amount`` is ``quantity × unit_price`` (exact, or rounded by compute)."""

    description: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    kind: str = "usage"
    #: For a tier's line: the first and last quantity of the tier's range (``None``: open).
    tier_from: int | None = field(default=None, compare=False)
    tier_to: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Totals:
    lines: tuple[Line, ...]
    net: Decimal
    tax: Decimal
    gross: Decimal


def minor_unit(exponent: int) -> Decimal:
    """``Decimal('0.01')`` for exponent 2, ``Decimal('1')`` for 0."""
    return Decimal(1).scaleb(-exponent)


def round_money(amount: Decimal, exponent: int) -> Decimal:
    """Half-up to the minor unit: 0.125 → 0.13, -0.125 → -0.13."""
    with localcontext(prec=60):
        return amount.quantize(minor_unit(exponent), rounding=ROUND_HALF_UP)


def usage_lines(version: PriceVersion, quantity: int) -> list[Line]:
    """The lines for the licences themselves, exact; none for quantity 0."""
    if quantity < 0:
        raise ValueError(f"a quantity cannot be negative: {quantity}")
    if quantity == 0:
        return []
    with localcontext(prec=60):
        if version.model == "flat":
            if version.unit_price is None:
                raise ValueError("a flat price version needs a unit_price")
            return [_line("licences", quantity, version.unit_price)]
        if version.model == "graduated":
            return _graduated(version.tiers, quantity)
        if version.model == "volume":
            return [_volume(version.tiers, quantity)]
    raise ValueError(f"unknown pricing model {version.model!r}")


def net_lines(version: PriceVersion, quantity: int) -> list[Line]:
    """All lines, exact: the usage lines, topped up to the minimum monthly charge."""
    lines = usage_lines(version, quantity)
    with localcontext(prec=60):
        top_up = _top_up(version.minimum_monthly_charge, _sum(lines))
    return lines + ([top_up] if top_up else [])


def compute(version: PriceVersion, quantity: int, tax_rate: Decimal, exponent: int) -> Totals:
    """Rounded lines, net (their sum, at least the minimum), tax on the net, gross."""
    lines = [
        replace(line, amount=round_money(line.amount, exponent))
        for line in usage_lines(version, quantity)
    ]
    minimum = version.minimum_monthly_charge
    with localcontext(prec=60):
        top_up = _top_up(
            None if minimum is None else round_money(minimum, exponent), _sum(lines)
        )
        if top_up:
            lines.append(top_up)
        net = round_money(_sum(lines), exponent)
        tax = round_money(net * tax_rate, exponent)
        return Totals(tuple(lines), net, tax, net + tax)


def with_tax_rate(totals: Totals, rate: Decimal, exponent: int) -> Totals:
    """``totals`` taxed at ``rate`` instead (a customer's VAT case decides the rate)."""
    with localcontext(prec=60):
        tax = round_money(totals.net * rate, exponent)
        return replace(totals, tax=tax, gross=totals.net + tax)


def _line(description: str, quantity: int, unit_price: Decimal) -> Line:
    return Line(description, quantity, unit_price, Decimal(quantity) * unit_price)


def _span(lower: int, up_to: int | None) -> str:
    return f"{lower + 1} and more" if up_to is None else f"{lower + 1}–{up_to}"


def _graduated(tiers: tuple[Tier, ...], quantity: int) -> list[Line]:
    lines = []
    lower = 0
    for tier in tiers:
        share = quantity - lower if tier.up_to is None else min(quantity, tier.up_to) - lower
        if share > 0:
            line = _line(f"tier {_span(lower, tier.up_to)}", share, tier.unit_price)
            lines.append(replace(line, tier_from=lower + 1, tier_to=tier.up_to))
        if tier.up_to is None or quantity <= tier.up_to:
            break
        lower = tier.up_to
    return lines


def _volume(tiers: tuple[Tier, ...], quantity: int) -> Line:
    lower = 0
    for tier in tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            line = _line(f"volume tier {_span(lower, tier.up_to)}", quantity, tier.unit_price)
            return replace(line, tier_from=lower + 1, tier_to=tier.up_to)
        lower = tier.up_to
    raise ValueError("the last tier must be open-ended")


def _sum(lines: list[Line]) -> Decimal:
    return sum((line.amount for line in lines), Decimal(0))


def _top_up(minimum: Decimal | None, subtotal: Decimal) -> Line | None:
    if minimum is None or subtotal >= minimum:
        return None
    return Line(MINIMUM_DESCRIPTION, 1, minimum - subtotal, minimum - subtotal, kind="minimum")


# Quotes and their explanation -------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """What one workspace owes for one month, and every input that decided it."""

    workspace_key: str
    month: date
    variant: str
    reason: str
    version: PriceVersion
    quantity: int
    totals: Totals


def quote(
    rules: PricingRules,
    workspace_key: str,
    *,
    created_on: date,
    month: date,
    quantity: int,
    contract_variant: str | None = None,
) -> Quote:
    """Price a workspace's month: variant, price version in force, totals.

    ``created_on`` is the workspace's creation date and ``month`` any day of the
    billed month, both in the billing time zone; ``contract_variant`` is the
    variant recorded on the workspace, if any (see ``PricingRules.variant_for``).
    Raises :class:`NoPriceError`.
    """
    month = month.replace(day=1)
    variant, reason = rules.variant_for(workspace_key, created_on, contract_variant)
    version = rules.price_version_for(workspace_key, variant, month)
    if version is None:
        raise NoPriceError(
            _(
                "no price version of %(variant)s is in force on %(day)s for workspace %(key)s: "
                "add one with an earlier effective_from",
                variant=variant,
                day=month.isoformat(),
                key=workspace_key,
            )
        )
    totals = compute(version, quantity, rules.tax_rate, rules.currency_exponent)
    return Quote(workspace_key, month, variant, reason, version, quantity, totals)


def explain(
    rules: PricingRules,
    workspace_key: str,
    *,
    created_on: date,
    month: date,
    quantity: int,
    contract_variant: str | None = None,
    vat: VatTreatment | None = None,
) -> list[str]:
    """The computation of :func:`quote`, as lines of text for a person to check.

    ``vat`` is the customer's VAT treatment (:func:`~plugin.rules.vat.vat_treatment`):
    its rate is applied and a line says why.  Without it, the rules' standard rate.
    """
    result = quote(
        rules,
        workspace_key,
        created_on=created_on,
        month=month,
        quantity=quantity,
        contract_variant=contract_variant,
    )
    version = result.version
    rate = rules.tax_rate if vat is None else vat.rate
    totals = with_tax_rate(result.totals, rate, rules.currency_exponent)
    exact = usage_lines(version, quantity)
    currency = rules.currency
    lines = [
        f"Workspace {workspace_key}, month {result.month:%Y-%m} ({rules.timezone})",
        f"Variant: {result.variant} – {_reason(rules, workspace_key, created_on, result.reason)}",
        f"Price version: {version.origin}, in force from {version.effective_from}: "
        f"{_describe(version)}",
        f"Quantity: {quantity} {UNITS.get(result.variant, 'licences')}",
    ]
    for index, line in enumerate(totals.lines):
        if line.kind == "minimum":
            lines.append(
                f"  {line.description}: minimum {version.minimum_monthly_charge} minus "
                f"{totals.net - line.amount} = {line.amount}"
            )
        else:
            lines.append(
                f"  {line.description}: {line.quantity} × {line.unit_price} = "
                + _rounded(exact[index].amount, line.amount)
            )
    added = " + ".join(str(line.amount) for line in totals.lines) or "nothing"
    lines += [
        f"Net: {added} = {totals.net} {currency}",
        f"Tax {percent(rate)} %: {totals.net} × {rate} = "
        + _rounded(totals.net * rate, totals.tax)
        + f" {currency}",
        f"Gross: {totals.net} + {totals.tax} = {totals.gross} {currency}",
    ]
    if vat is not None:
        note = f"; the invoice says: {vat.note}" if vat.note else ""
        lines.append(f"VAT: category {vat.category}, {percent(rate)} %: {vat.reason}{note}")
    lines.append(f"Rules: sha256 {rules.sha256[:12]}")
    return lines


def _reason(rules: PricingRules, key: str, created_on: date, reason: str) -> str:
    if reason == "contract" and key in rules.contracts:
        return f"individual contract (contracts.{key} in the rules)"
    if reason == "contract":
        return "individual contract (recorded on the workspace)"
    side = "before" if created_on < rules.cutover_date else "on or after"
    return f"workspace created {created_on}, {side} the cut-over date {rules.cutover_date}"


def _describe(version: PriceVersion) -> str:
    if version.model == "flat":
        text = f"flat, {version.unit_price} each"
    else:
        steps = []
        lower = 0
        for tier in version.tiers:
            steps.append(f"{_span(lower, tier.up_to)} at {tier.unit_price}")
            lower = tier.up_to or lower
        text = f"{version.model} tiers: " + "; ".join(steps)
    if version.minimum_monthly_charge is not None:
        text += f"; minimum monthly charge {version.minimum_monthly_charge}"
    return text


def _rounded(exact: Decimal, rounded: Decimal) -> str:
    return str(rounded) if exact == rounded else f"{exact}, rounded half-up to {rounded}"


def percent(rate: Decimal) -> str:
    """``0.19`` as ``19``, ``0.075`` as ``7.5``: a rate in per cent, without trailing zeros."""
    value = (rate * 100).normalize()
    return format(value, "f")
