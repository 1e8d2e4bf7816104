"""The ``flask billing`` command group: thin wrappers around the domain services.

Each module registers its commands on :data:`billing_cli` when imported.
"""

from . import data, details, exports, invoices, mail, members, pdfs, rules
from .common import billing_cli

__all__ = [
    "billing_cli", "data", "details", "exports", "invoices", "mail", "members", "pdfs", "rules"
]
