"""Month close, credit notes and the invoice list: ``flask billing close-month`` and friends."""

from __future__ import annotations

import click

from ..extension import billing
from ..services.invoicing import (
    InvoicingError,
    close_month,
    default_close_month,
    issue_credit_note,
    list_invoices,
)
from ..services.periods import Month
from ..types import utcnow
from .common import MONTH, background, billing_cli, echo_listing
from .pdfs import render_pending_pdfs


@billing_cli.command("close-month")
@click.argument("month", type=MONTH, required=False)
@background
def close_month_command(month: Month | None) -> None:
    """Issue the invoices of MONTH (default: the previous month), then render their PDFs.

    Safe to run twice or in several processes at once: a workspace has one
    current invoice per month, and numbers stay gap-free.  A workspace whose
    invoice for MONTH was credited gets a new one.
    """
    ext = billing()
    session = ext.session
    rules = ext.rules()
    now = utcnow()
    month = month or default_close_month(rules, now)
    try:
        summary = close_month(session, rules, month, now, actor=ext.actor())
    except InvoicingError as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from exc
    session.commit()
    for line in summary.lines():
        click.echo(line)
    render_pending_pdfs()


@billing_cli.command("credit-note")
@click.argument("number")
@click.option("--reason", required=True, help="Why the invoice is credited (printed on it).")
def credit_note_command(number: str, reason: str) -> None:
    """Credit invoice NUMBER in full with a credit note of its own number.

    Its workspace's history is reopened for a correction, and the next
    close-month of the invoice's month issues that workspace a new invoice.
    """
    ext = billing()
    session = ext.session
    try:
        credit = issue_credit_note(
            session, ext.rules(), number, reason, utcnow(), actor=ext.actor()
        )
    except InvoicingError as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from exc
    session.commit()
    for line in credit.lines(ext.zone()):
        click.echo(line)


@billing_cli.command("invoices")
@click.option("--month", type=MONTH, help="Only this billing period.")
@click.option("--workspace", "workspace_key", help="Only this workspace key.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def invoices_command(month: Month | None, workspace_key: str | None, as_json: bool) -> None:
    """List invoices and credit notes."""
    listings = list_invoices(billing().session, month=month, workspace_key=workspace_key)
    echo_listing(
        listings,
        as_json,
        lambda item: (
            f"{item.number:<16} {item.kind:<11} {item.workspace:<20} {item.period} "
            f"{item.variant:<13} {item.quantity:>6} {item.gross:>12} {item.currency} {item.status}"
        ),
    )
