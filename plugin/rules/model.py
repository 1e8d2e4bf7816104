"""The pricing rules as immutable value objects: what the rest of the code uses.

Nothing but :mod:`plugin.rules.loader` reads the YAML; everything else gets a
:class:`PricingRules`.  Frozen dataclasses with tuples and read-only mappings,
so rules shared between threads (and recorded on an invoice) cannot change.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

VARIANTS = ("team_licences", "user_licences")
"""The two billing variants (the same names as the database's ``contract_variant``)."""
PRICING_MODELS = ("flat", "graduated", "volume")

Variant = Literal["team_licences", "user_licences"]
VariantReason = Literal["contract", "cutover"]


@dataclass(frozen=True)
class Tier:
    """Licences up to ``up_to`` (inclusive; ``None``: no upper limit) at ``unit_price``."""

    up_to: int | None
    unit_price: Decimal


@dataclass(frozen=True)
class PriceVersion:
    """One price list, in force from ``effective_from`` (a first day of a month) on.

    ``flat``: every licence at ``unit_price``.  ``graduated``: each tier's share
    of the quantity at that tier's price.  ``volume``: the whole quantity at
    the price of the tier it falls in.  ``origin`` is its path in the rules
    file, so an explanation can point at it.
    """

    effective_from: date
    model: str
    unit_price: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    minimum_monthly_charge: Decimal | None = None
    origin: str = ""


@dataclass(frozen=True)
class Seller:
    """Who issues the invoices, as printed on them (§14 UStG, §35a GmbHG).

    Identifiers arrive normalised by :mod:`plugin.validators` (VAT ID and IBAN
    without spaces).  At least one of ``vat_id`` and ``tax_number`` is set.
    """

    name: str
    address_lines: tuple[str, ...]
    postcode: str
    city: str
    country: str
    vat_id: str | None
    tax_number: str | None
    register_court: str
    register_number: str
    managing_directors: tuple[str, ...]
    email: str
    contact_name: str
    contact_phone: str
    contact_email: str
    payment_terms_days: int
    iban: str
    bic: str | None = None
    bank_name: str | None = None

    @property
    def address(self) -> tuple[str, ...]:
        """The street lines, then postcode and city (the country is printed in words apart)."""
        return (*self.address_lines, f"{self.postcode} {self.city}")


DEFAULT_REVERSE_CHARGE_NOTE = "Steuerschuldnerschaft des Leistungsempfängers / Reverse charge"
DEFAULT_NOT_TAXABLE_NOTE = (
    "Nicht im Inland steuerbare Leistung / Service not subject to German VAT"
)


@dataclass(frozen=True)
class VatRules:
    """The VAT cases besides the standard rate (``PricingRules.tax_rate``): their notes.

    Reverse charge (EN 16931 category AE) and "not subject to VAT" (O) have
    no rate of their own: 0 % by law.
    """

    reverse_charge_note: str = DEFAULT_REVERSE_CHARGE_NOTE
    not_taxable_note: str = DEFAULT_NOT_TAXABLE_NOTE


@dataclass(frozen=True)
class Contract:
    """An individual (enterprise) contract of one workspace."""

    workspace_key: str
    variant: str
    prices: tuple[PriceVersion, ...] = ()
    email_invoices: bool | None = None
    note: str | None = None


class WorkspaceLike(Protocol):
    """What the variant of a workspace depends on: a model instance or a row."""

    key: str
    created_at: datetime
    contract_variant: str | None


@dataclass(frozen=True, eq=False)
class PricingRules:
    """One valid version of ``pricing_rules.yaml``.

    Two rules objects are equal when their file contents are (same sha256).
    ``content`` is the exact text of the file, kept so that an invoice can
    record which rules priced it.
    """

    currency: str
    currency_exponent: int
    tax_rate: Decimal
    timezone: str
    invoice_number_format: str
    seller: Seller
    cutover_date: date
    variants: Mapping[str, tuple[PriceVersion, ...]]
    contracts: Mapping[str, Contract]
    sha256: str
    content: str = field(repr=False)
    vat: VatRules = VatRules()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PricingRules):
            return NotImplemented
        return self.sha256 == other.sha256

    def __hash__(self) -> int:
        return hash(self.sha256)

    @property
    def zoneinfo(self) -> ZoneInfo:
        """The billing time zone, in which a month starts and a bare date means 00:00."""
        return ZoneInfo(self.timezone)

    def invoice_number(self, year: int, seq: int) -> str:
        """The invoice number for the ``seq``-th invoice of ``year``."""
        return self.invoice_number_format.format(year=year, seq=seq)

    def variant_for(
        self, workspace_key: str, created_on: date, contract_variant: str | None = None
    ) -> tuple[str, VariantReason]:
        """The variant a workspace bills, and why.

        ``created_on`` is the workspace's creation date in the billing time
        zone.  A contract naming a variant wins: first one in this file, then
        ``contract_variant`` as recorded on the workspace itself (the file is
        accounting's word, so it decides when the two disagree).  Otherwise a
        workspace created before the cut-over date bills user licences, from
        it team licences.
        """
        contract = self.contracts.get(workspace_key)
        if contract is not None:
            return contract.variant, "contract"
        if contract_variant is not None:
            if contract_variant not in VARIANTS:
                raise ValueError(f"unknown billing variant {contract_variant!r}")
            return contract_variant, "contract"
        if created_on < self.cutover_date:
            return "user_licences", "cutover"
        return "team_licences", "cutover"

    def variant_of(self, workspace: WorkspaceLike) -> tuple[str, VariantReason]:
        """:meth:`variant_for` a workspace, created at an instant (its date in the billing zone)."""
        created_on = workspace.created_at.astimezone(self.zoneinfo).date()
        return self.variant_for(workspace.key, created_on, workspace.contract_variant)

    def price_version_for(
        self, workspace_key: str, variant: str, month_first_day: date
    ) -> PriceVersion | None:
        """The price version in force on the first day of the billed month, or ``None``.

        A contract's own prices (for the variant it names) take precedence; for
        months before its first own version, the variant's standard prices apply.
        """
        month = month_first_day.replace(day=1)
        contract = self.contracts.get(workspace_key)
        if contract is not None and contract.variant == variant and contract.prices:
            version = _in_force(contract.prices, month)
            if version is not None:
                return version
        return _in_force(self.variants[variant], month)

    def summary(self) -> list[str]:
        """A few lines saying what these rules contain (for ``rules check``)."""
        lines = [
            f"currency {self.currency} ({self.currency_exponent} decimals), "
            f"tax rate {format((self.tax_rate * 100).normalize(), 'f')} %, "
            f"time zone {self.timezone}",
            f"cut-over date {self.cutover_date}: user licences before it, team licences from it",
            f"invoice numbers like {self.invoice_number(self.cutover_date.year, 1)}",
        ]
        for name, versions in self.variants.items():
            lines.append(
                f"{name}: {len(versions)} price version(s), "
                + ", ".join(f"{v.model} from {v.effective_from}" for v in versions)
            )
        own = sum(1 for contract in self.contracts.values() if contract.prices)
        keys = ", ".join(self.contracts) or "none"
        lines.append(f"contracts: {len(self.contracts)} ({keys}), {own} with their own prices")
        return lines

    def emails_invoices(self, workspace_key: str, variant: str) -> bool:
        """Whether invoices are e-mailed (user licences) or only downloadable (team licences),
        unless the workspace's contract says otherwise."""
        contract = self.contracts.get(workspace_key)
        if contract is not None and contract.email_invoices is not None:
            return contract.email_invoices
        return variant == "user_licences"


def _in_force(versions: tuple[PriceVersion, ...], day: date) -> PriceVersion | None:
    index = bisect.bisect_right([version.effective_from for version in versions], day)
    return versions[index - 1] if index else None
