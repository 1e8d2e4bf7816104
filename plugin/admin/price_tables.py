"""The prices of a rules file as tables: per variant (and contract) one row per price version.

A version is a dated price period of ``pricing_rules.yaml``: it runs from its
``effective_from`` to the day before the next version starts.  The pricing
rules page shows the rules in force this way, and the check page the draft's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from ..i18n import _
from ..rules import PricingRules
from ..rules.model import PriceVersion


@dataclass(frozen=True)
class TierRow:
    """Licences ``first`` to ``last`` (``None``: and more) at ``unit_price``."""

    first: int
    last: int | None
    unit_price: Decimal


@dataclass(frozen=True)
class PricePeriod:
    version: PriceVersion
    #: The version's last day; ``None`` while no later version is planned.
    until: date | None
    in_force: bool
    tiers: tuple[TierRow, ...]


@dataclass(frozen=True)
class PriceTable:
    key: str
    title: str
    periods: tuple[PricePeriod, ...]


def _variant_title(variant: str) -> str:
    titles = {
        "team_licences": _("Team licences (per active team and month)"),
        "user_licences": _("User licences (per billed member and month)"),
    }
    return titles.get(variant, variant)


def model_text(model: str) -> str:
    """What a pricing model means, in a few words."""
    texts = {
        "flat": _("flat: every licence at one price"),
        "graduated": _("graduated: each tier's licences at that tier's price"),
        "volume": _("volume: all licences at the price of the tier the total falls in"),
    }
    return texts.get(model, model)


def _periods(versions: Sequence[PriceVersion], today: date) -> tuple[PricePeriod, ...]:
    periods = []
    for index, version in enumerate(versions):
        following = versions[index + 1].effective_from if index + 1 < len(versions) else None
        tiers, first = [], 1
        for tier in version.tiers:
            tiers.append(TierRow(first, tier.up_to, tier.unit_price))
            first = (tier.up_to or first) + 1
        periods.append(
            PricePeriod(
                version,
                following - timedelta(days=1) if following else None,
                version.effective_from <= today and (following is None or today < following),
                tuple(tiers),
            )
        )
    return tuple(periods)


def price_tables(rules: PricingRules, today: date) -> list[PriceTable]:
    """Every variant's price periods, then every contract's own, oldest first.

    ``today`` (in the billing time zone) marks the version in force now.
    """
    tables = [
        PriceTable(variant, _variant_title(variant), _periods(versions, today))
        for variant, versions in rules.variants.items()
    ]
    tables += [
        PriceTable(
            f"contract-{key}",
            _(
                "Contract of %(key)s: %(variant)s",
                key=key,
                variant=_variant_title(contract.variant),
            ),
            _periods(contract.prices, today),
        )
        for key, contract in rules.contracts.items()
        if contract.prices
    ]
    return tables
