"""The ``flask billing`` command group.

Each module registers its commands on :data:`billing_cli` when imported;
:func:`billing_group` gives an app that group, with ``generate`` added where
the host asks for the synthetic data commands.
"""

from __future__ import annotations

import click

from . import data, details, exports, invoices, mail, manage, members, pdfs, rules, worker
from .common import BillingGroup, billing_cli

__all__ = [
    "billing_cli",
    "billing_group",
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


def billing_group(synthetic: bool) -> click.Group:
    """The ``flask billing`` group of one app (``BILLING_SYNTHETIC_COMMANDS``: ``synthetic``).

    Without the synthetic commands it is the shared :data:`billing_cli`; with
    them, a copy of it that also holds ``generate`` (so that no other app on
    the process gets the command).
    """
    if not synthetic:
        return billing_cli
    from ..synthetic.cli import generate_command

    return BillingGroup(
        billing_cli.name,
        commands={**billing_cli.commands, "generate": generate_command},
        help=billing_cli.help,
    )
