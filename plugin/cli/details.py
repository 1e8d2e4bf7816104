"""Customer billing details: ``flask billing set-billing-details`` and ``check-month``."""

from __future__ import annotations

from typing import Any

import click

from ..extension import billing
from ..services.billing_details import (
    FIELDS,
    BillingDetailsError,
    from_input,
    set_billing_details,
)
from ..services.invoicing import InvoicingError, default_close_month, plan_month
from ..services.periods import Month
from ..types import utcnow
from .common import MONTH, billing_cli, fail


@billing_cli.command("set-billing-details")
@click.argument("key")
@click.option("--legal-name", help="The customer's full legal name, as invoiced.")
@click.option(
    "--street", multiple=True, help="A street line of the postal address (repeat for up to 3)."
)
@click.option("--postcode")
@click.option("--city")
@click.option("--country", help="ISO 3166-1 code such as DE, FR, US.")
@click.option("--vat-id", help="VAT ID with its country prefix, such as FR40303265045.")
@click.option("--buyer-reference", help="BT-10; a Leitweg-ID makes the customer XRechnung.")
@click.option("--order-reference", help="The customer's purchase-order number (BT-13).")
@click.option("--language", help="Language of the customer's documents: de or en.")
@click.option("--email", help="Billing e-mail address, if not the workspace's invoice mailbox.")
def set_billing_details_command(key: str, **options: Any) -> None:
    """Set the billing details of workspace KEY: only the options given change.

    An empty value ("") clears a field.  Everything is checked before
    anything is stored; the change is audited with the values before and after.
    """
    changes = {
        name: list(value) if name == "street" else value
        for name, value in options.items()
        if value is not None and value != ()
    }
    if not changes:
        raise click.UsageError("give at least one option to change, such as --legal-name")
    ext = billing()
    session = ext.session
    try:
        result = set_billing_details(session, key, from_input(changes), actor=ext.actor())
    except BillingDetailsError as exc:
        session.rollback()
        fail(
            [f"{_option(where, key)}: {message}" for where, message in exc.errors.items()],
            "nothing was changed",
        )
    session.commit()
    state = "changed" if result.changed else "already as given, nothing changed"
    click.echo(f"Billing details of {key}: {state}.")


def _option(where: str, key: str) -> str:
    """The option a refusal is about (``legal_name`` -> ``--legal-name``), else its location."""
    field = where.removeprefix(f"{key}: ")
    return f"--{field.replace('_', '-')}" if field in _OPTIONS else where


_OPTIONS = frozenset({*FIELDS, "street"} - {"address_lines"})


@billing_cli.command("check-month")
@click.argument("month", type=MONTH, required=False)
def check_month_command(month: Month | None) -> None:
    """Show what closing MONTH (default: the previous month) would issue; writes nothing.

    Lists the invoices by VAT category with their totals, and every workspace
    the close would hold because its billing details are incomplete.
    """
    ext = billing()
    session = ext.session
    rules = ext.rules()
    now = utcnow()
    month = month or default_close_month(rules, now)
    try:
        plan = plan_month(session, rules, month, now)
    except InvoicingError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        session.rollback()
    for line in plan.lines():
        click.echo(line)
