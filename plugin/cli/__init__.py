"""The ``flask billing`` command group.

Each module registers its commands on :data:`billing_cli` when imported.
"""

from . import data, details, exports, invoices, mail, manage, members, pdfs, rules, worker
from .common import billing_cli

__all__ = [
    "billing_cli",
    "data",
    "details",
    "exports",
    "invoices",
    "mail",
    "manage",
    "members",
    "pdfs",
    "rules",
    "worker",
]
