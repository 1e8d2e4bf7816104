"""Which VAT applies to an invoice: decided from the seller's and the customer's country.

The cases (docs/billing-details.md, "VAT cases"; §3a, §13b UStG; EN 16931 categories):

- the customer is in the seller's country: the standard rate (``S``);
- a customer in another EU member state with a VAT ID: reverse charge
  (``AE``, 0 %, exemption reason ``VATEX-EU-AE``, both VAT IDs printed);
- a customer in another EU member state without a VAT ID (a consumer): the
  seller's standard rate; the rates of the customer's country (OSS) are out
  of scope;
- a customer outside the EU: not subject to VAT in the seller's country
  (``O``, 0 %, ``VATEX-EU-O``).

The VAT ID is trusted as validated (format and check digits); whether the
customer is really a business is accounting's word when they enter it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..validators import EU_COUNTRIES
from .model import PricingRules

STANDARD, REVERSE_CHARGE, NOT_SUBJECT = "S", "AE", "O"


@dataclass(frozen=True)
class VatTreatment:
    """The VAT of one invoice as recorded on it."""

    category: str
    rate: Decimal
    exemption_code: str | None
    note: str | None
    case: str
    #: Why it applies, in a line for a person (``flask billing rules explain``).
    reason: str = ""

    def as_columns(self) -> dict[str, object]:
        """The invoice columns this treatment fills."""
        return {
            "vat_category": self.category,
            "tax_rate": self.rate,
            "vat_exemption_code": self.exemption_code,
            "vat_note": self.note,
        }


def vat_treatment(rules: PricingRules, country: str, vat_id: str | None) -> VatTreatment:
    """The treatment of a customer in ``country`` (ISO code) with or without a VAT ID."""
    seller = rules.seller.country
    if country == seller:
        return VatTreatment(STANDARD, rules.tax_rate, None, None, "domestic",
                            f"customer in {country}, the seller's country: standard rate")
    if country in EU_COUNTRIES:
        if vat_id:
            return VatTreatment(
                REVERSE_CHARGE,
                Decimal(0),
                "VATEX-EU-AE",
                rules.vat.reverse_charge_note,
                "eu_reverse_charge",
                f"business customer in {country} (EU) with VAT ID {vat_id}: reverse charge",
            )
        return VatTreatment(STANDARD, rules.tax_rate, None, None, "eu_consumer",
                            f"customer in {country} (EU) without a VAT ID: the seller's "
                            "standard rate")
    return VatTreatment(
        NOT_SUBJECT, Decimal(0), "VATEX-EU-O", rules.vat.not_taxable_note, "outside_eu",
        f"customer in {country}, outside the EU: not taxable in {seller}",
    )


def undecided(rules: PricingRules) -> VatTreatment:
    """A customer whose country is not known yet: no invoice is issued to it, so a
    preview shows the standard rate."""
    return VatTreatment(STANDARD, rules.tax_rate, None, None, "unknown",
                        "no country in the billing details yet: the standard rate is shown")
