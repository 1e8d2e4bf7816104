"""Pricing rules: ``pricing_rules.yaml`` validated into immutable objects, and the price arithmetic.

No Flask and no database here: the domain services and adapters build on it.
"""

from ..documents import LocatedError
from .loader import (
    RulesError,
    RulesProblem,
    RulesStore,
    RulesUnavailable,
    load_rules,
    load_rules_file,
)
from .model import (
    PRICING_MODELS,
    VARIANTS,
    Contract,
    PriceVersion,
    PricingRules,
    Seller,
    Tier,
)
from .pricing import (
    Line,
    NoPriceError,
    Quote,
    Totals,
    compute,
    explain,
    minor_unit,
    net_lines,
    quote,
    round_money,
    usage_lines,
)

__all__ = [
    "PRICING_MODELS",
    "VARIANTS",
    "Contract",
    "Line",
    "LocatedError",
    "NoPriceError",
    "PriceVersion",
    "PricingRules",
    "Quote",
    "RulesError",
    "RulesProblem",
    "RulesStore",
    "RulesUnavailable",
    "Seller",
    "Tier",
    "Totals",
    "compute",
    "explain",
    "load_rules",
    "load_rules_file",
    "minor_unit",
    "net_lines",
    "quote",
    "round_money",
    "usage_lines",
]
